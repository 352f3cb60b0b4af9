"""Image tasks for class-conditional autoregressive models of MNIST pixels (the MNIST features of
cheind/autoregressive), for any family through the model interface (engine/models/base.py): per-pixel
likelihoods, Bayes-rule classification (also after every prefix of pixels) and sampling digits; the
completion of partly known digits lives in engine/completion.py and is re-exported here.

Images come in as a dataset or a canvas gives them: (B, H, W) or (H, W), 0 = background, 255 = ink.
Each task applies the model's own quantization and scan order from `model.data_config`; row t of the
model's `log_probs` is p(x_t | x_<t, y), so the first pixel has a likelihood too. Outputs are CPU tensors."""

from __future__ import annotations

import math
from typing import Iterator

import torch

from engine.completion import complete
from engine.images import (
    MAX_IMAGES,
    MAX_PARTICLE_ROWS,
    Progress,
    as_tensor,
    check_count,
    check_digits,
    check_generator,
    check_temperature,
    conditions,
    decode_levels,
    encode_images,
    forward_rows,
    observed_scores,
    image_config,
    model_device,
    score_levels,
)
from engine.models.base import NaiveState
from engine.sampling import make_sampler
from engine.threads import task_threads

__all__ = [
    "MAX_IMAGES",
    "MAX_PARTICLE_ROWS",
    "class_posterior",
    "class_posterior_by_prefix",
    "complete",
    "image_log_likelihood",
    "read_drawing",
    "decode_levels",
    "encode_images",
    "forward_rows",
    "observed_scores",
    "iter_sample_images",
    "pixel_log_likelihoods",
    "sample_images",
    "score_levels",
]


@torch.no_grad()
def pixel_log_likelihoods(model, images) -> torch.Tensor:
    """log p(x_t | x_<t, y=k) for every pixel (first included) and class: images -> (B, K, H*W)."""
    return observed_scores(model, encode_images(model, images)).cpu()


def _log_prior(prior, K: int, device) -> torch.Tensor:
    if prior is None:
        return torch.full((K,), -math.log(K), device=device)
    p = as_tensor(prior, "prior").double().reshape(-1)
    if p.numel() != K or not torch.isfinite(p).all() or (p < 0).any() or p.sum() <= 0:
        raise ValueError(f"prior must be {K} non-negative numbers with a positive sum.")
    return (p / p.sum()).log().float().to(device)


def _check_conditional(model) -> int:
    K = model.config.cond_channels
    if K == 0:
        raise ValueError("This model is unconditional, so it cannot tell classes apart; pick a class-conditional model.")
    return K


@task_threads("posterior")
@torch.no_grad()
def class_posterior_by_prefix(model, images, prior=None) -> torch.Tensor:
    """p(y | x_0..x_h) for every horizon h from one batched forward: images -> (B, H*W, K);
    row h is the posterior after observing pixels 0..h in scan order. prior (K,) defaults to uniform."""
    K = _check_conditional(model)
    return _posterior_by_prefix(pixel_log_likelihoods(model, images), _log_prior(prior, K, "cpu"))


def _posterior_by_prefix(ll: torch.Tensor, log_prior: torch.Tensor) -> torch.Tensor:
    """Pixel log-likelihoods (B, K, N), log prior (K,) -> p(y | x_0..x_h) (B, N, K)."""
    joint = ll.cumsum(dim=-1) + log_prior[None, :, None]
    return torch.softmax(joint, dim=1).transpose(1, 2).contiguous()


def _log_evidence(ll: torch.Tensor) -> torch.Tensor:
    """Pixel log-likelihoods (B, K, N) -> log p(x) (B,), the classes marginalized with a uniform prior."""
    per_class = ll.sum(dim=-1)
    return torch.logsumexp(per_class, dim=1) - math.log(per_class.shape[1])


@task_threads("posterior")
@torch.no_grad()
def read_drawing(model, images, prior=None) -> tuple[torch.Tensor, torch.Tensor]:
    """What the Guess page shows for each canvas update, from ONE forward: images -> (p(y | x_0..x_h)
    (B, H*W, K) as class_posterior_by_prefix, log p(x) (B,) in nats with a uniform class prior)."""
    K = _check_conditional(model)
    ll = pixel_log_likelihoods(model, images)
    return _posterior_by_prefix(ll, _log_prior(prior, K, "cpu")), _log_evidence(ll)


@task_threads("posterior")
@torch.no_grad()
def image_log_likelihood(model, images) -> torch.Tensor:
    """log p(x) in nats for images (B, H, W), B of any size (chunked to MAX_IMAGES per forward), the classes
    marginalized with a uniform prior: -> (B,)."""
    images = as_tensor(images, "images")
    return torch.cat([_log_evidence(pixel_log_likelihoods(model, images[i:i + MAX_IMAGES]))
                      for i in range(0, images.shape[0], MAX_IMAGES)])


@task_threads("posterior")
@torch.no_grad()
def class_posterior(model, images, prior=None) -> torch.Tensor:
    """p(y | x) by Bayes' rule over the summed pixel log-likelihoods: images -> (B, K)."""
    K = _check_conditional(model)
    ll = pixel_log_likelihoods(model, images).sum(dim=-1)
    return torch.softmax(ll + _log_prior(prior, K, "cpu")[None], dim=1)


@task_threads("sample")
@torch.no_grad()
def iter_sample_images(model, digits, n: int = 1, temperature: float = 1.0, generator: torch.Generator | None = None,
                       every: int | None = None, naive_rows: int = 0) -> Iterator[tuple[int, torch.Tensor]]:
    """Sample n images of each digit, pixel by pixel with the fast generator; yields (pixels done,
    uint8 images (len(digits)*n, H, W) so far, unsampled pixels 0) every `every` pixels (default: one
    image row) and at the end. Rows are digit-major: row i*n + j is the j-th sample of digits[i].
    naive_rows: the first this many image rows come from the naive state (the whole image so far re-run
    for every pixel), then the family's fast state takes over from what was sampled, so a person feels
    the difference; the samples are the same as without (same log-probabilities, same random draws)."""
    c = image_config(model)
    digits = check_digits(model, digits)
    n = check_count("n", n, 1, MAX_IMAGES)
    if len(digits) * n > MAX_IMAGES:
        raise ValueError(f"At most {MAX_IMAGES} images per call; {len(digits)} digits x {n} asks for {len(digits) * n}.")
    temperature = check_temperature(temperature)
    N = c["H"] * c["W"]
    every = check_count("every", every if every is not None else c["W"], 1, N)
    naive = check_count("naive_rows", naive_rows, 0, c["H"]) * c["W"]
    device = model_device(model)
    check_generator(generator, device)
    B = len(digits) * n
    cond = None if digits == [None] else conditions(model, torch.tensor(digits, device=device).repeat_interleave(n))
    prefix = torch.zeros(B, 0, dtype=torch.long, device=device)  # nothing known: the model starts from its own start
    sampler = make_sampler("greedy" if temperature == 0 else "temperature", temperature=temperature or 1.0, generator=generator)
    out = torch.zeros(B, N, dtype=torch.long, device=device)
    state = NaiveState(model, prefix, cond) if naive else model.start(prefix, cond)
    for t in range(N):
        if naive and t == naive:  # the naive rows are done: the fast state starts from what they sampled
            state = model.start(out[:, :t], cond)
        out[:, t] = sampler(state.log_probs)
        if t + 1 < N:
            state.step(out[:, t])
        if (t + 1) % every == 0 or t + 1 == N:
            yield t + 1, decode_levels(model, out)


@torch.no_grad()
def sample_images(model, digits, n: int = 1, temperature: float = 1.0, generator: torch.Generator | None = None,
                  progress: Progress | None = None) -> torch.Tensor:
    """n samples of each digit in `digits` (None for an unconditional model): -> uint8 (len(digits)*n, H, W),
    digit-major. temperature 0 is greedy. progress(pixels done, H*W) after every image row."""
    images = None
    for done, images in iter_sample_images(model, digits, n, temperature, generator):
        if progress is not None:
            progress(done, images.shape[1] * images.shape[2])
    return images
