"""Image tasks for a class-conditional WaveNet over MNIST pixels in raster order (van den Oord et al.
2016; the MNIST features of cheind/autoregressive): per-pixel likelihoods, Bayes-rule classification
(also after every prefix of pixels), sampling digits and completing partly known digits with
sequential Monte Carlo (Doucet, de Freitas and Gordon 2001) over the fast generator's state.

Images come in as a dataset or a canvas gives them: (B, H, W) or (H, W), 0 = background, 255 = ink.
Each task applies the model's own quantization and scan order from `model.data_config`. Because
column t of the output predicts x(t+1), the model reads [start_value, x_0, ..., x_{N-2}] and output
column t predicts x_t, so the first pixel has a likelihood too. Outputs are CPU tensors."""

from __future__ import annotations

import itertools
import math
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from engine.encoding import image_to_sequence, images_to_levels, levels_to_images, sequence_to_image
from engine.generation import generate_fast, level_feed, prime
from engine.sampling import make_sampler
from engine.threads import task_threads

__all__ = [
    "MAX_IMAGES",
    "MAX_PARTICLE_ROWS",
    "class_posterior",
    "class_posterior_by_prefix",
    "complete",
    "decode_levels",
    "encode_images",
    "iter_sample_images",
    "pixel_log_likelihoods",
    "sample_images",
    "score_levels",
]

MAX_IMAGES = 100  # images per call (cost cap for pages shared by many sessions)
MAX_PARTICLE_ROWS = 1024  # completions x particles per call
# sequences per full forward: bounds memory (~3 MB of activations per row for R=704) and, on a CPU, keeps
# them in cache: 10-row chunks score 100 rows 2x faster than one 100-row forward on this project's VM, and
# 5-row chunks one digit's 10 rows (a live posterior) 7 % faster than 10 (84.6 vs 90.6 ms, 1 thread; 2 and 4 slower)
FORWARD_ROWS = {"cpu": 5, "cuda": 200}

Progress = Callable[[int, int], None]


def _image_config(model) -> dict:
    dc = getattr(model, "data_config", None) or {}
    if dc.get("task") != "mnist" or "scan_order" not in dc:
        raise ValueError(f"This model was not trained on images (its config.json says task {dc.get('task')!r}); pick an MNIST model.")
    Q = model.config.quantization_levels
    levels = (dc.get("quantization") or {}).get("levels", Q)
    if levels != Q:
        raise ValueError(f"config.json says {levels} quantization levels but the model has {Q}.")
    return {"Q": Q, "threshold": int(dc.get("threshold", 127)), "scan_order": dc["scan_order"],
            "H": int(dc.get("height", 28)), "W": int(dc.get("width", 28)), "start": int(dc.get("start_value", 0)),
            "K": model.config.cond_channels}


def _device(model) -> torch.device:
    return next(model.parameters()).device


def _check_count(name: str, value, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= high:
        raise ValueError(f"{name} must be a whole number from {low} to {high}, got {value!r}.")
    return int(value)


def _check_temperature(temperature) -> float:
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not (temperature >= 0 and math.isfinite(temperature)):
        raise ValueError(f"temperature must be a number >= 0 (0 = most likely pixel), got {temperature!r}.")
    return float(temperature)


def _check_generator(generator, device: torch.device) -> None:
    if generator is not None and torch.device(generator.device).type != device.type:
        raise ValueError(f"The random generator lives on {generator.device} but the model on {device}; "
                         f"make it with torch.Generator(device={str(device)!r}).")


def _as_tensor(x, what: str) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu()
    try:
        arr = np.asarray(x)
    except Exception:
        raise ValueError(f"{what} must be an array or tensor.") from None
    if arr.dtype == object or arr.dtype.kind in "USVc":
        raise ValueError(f"{what} must hold numbers, got dtype {arr.dtype}.")
    return torch.from_numpy(arr.copy())


def _check_images(images, H: int, W: int) -> torch.Tensor:
    """(B, H, W) or (H, W) pixel values 0..255 -> uint8 (B, H, W)."""
    x = _as_tensor(images, "images")
    if x.dim() == 2:
        x = x[None]
    if x.dim() != 3 or tuple(x.shape[1:]) != (H, W):
        raise ValueError(f"images must have shape ({H}, {W}) or (B, {H}, {W}), got {tuple(x.shape)}.")
    if x.shape[0] < 1 or x.shape[0] > MAX_IMAGES:
        raise ValueError(f"Pass 1 to {MAX_IMAGES} images per call, got {x.shape[0]}.")
    if x.dtype == torch.bool or x.is_complex():
        raise ValueError(f"images must hold pixel values 0..255 (uint8 or numbers), got dtype {x.dtype}.")
    if x.is_floating_point():
        if torch.isnan(x).any():
            raise ValueError("images contain NaN values.")
        x = x.round()
    else:
        x = x.long()  # compare in a wide type: 255 does not fit int8, and an int8 comparison would wrap
    if x.min() < 0 or x.max() > 255:
        raise ValueError(f"Pixel values must lie in 0..255, got {x.min().item()}..{x.max().item()}.")
    return x.to(torch.uint8)


def encode_images(model, images) -> torch.Tensor:
    """Pixels (B, H, W) or (H, W) in 0..255 -> the model's levels (B, H*W) long, in its scan order."""
    c = _image_config(model)
    x = _check_images(images, c["H"], c["W"])
    return image_to_sequence(images_to_levels(x, c["Q"], c["threshold"]), c["scan_order"])


def decode_levels(model, levels: torch.Tensor) -> torch.Tensor:
    """Levels (B, H*W) in scan order -> uint8 images (B, H, W) on the CPU, for display."""
    c = _image_config(model)
    return levels_to_images(sequence_to_image(levels.cpu(), c["H"], c["W"], c["scan_order"]), c["Q"])


def forward_rows(model, inputs: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
    """Teacher-forced logits (M, N, Q) for input levels (M, N), FORWARD_ROWS sequences at a time
    (the model's time-major inference path: no one-hot copy, plain matrix products)."""
    rows = FORWARD_ROWS.get(inputs.device.type, 10)
    chunks = []
    for s in range(0, inputs.shape[0], rows):
        chunks.append(model.logits_from_levels(inputs[s:s + rows], None if cond is None else cond[s:s + rows]))
    return chunks[0] if len(chunks) == 1 else torch.cat(chunks)


@torch.no_grad()
def score_levels(model, levels: torch.Tensor, start_value: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Teacher-forced scores of level sequences (B, N) under every class, all B*K rows batched together:
    -> log p(x_t | x_<t, y=k) (B, K, N) and the most likely level at each pixel (B, K, N).
    An unconditional model counts as K=1."""
    device = _device(model)
    levels = levels.to(device).long()
    B, N = levels.shape
    K = model.config.cond_channels
    inputs = torch.cat([torch.full((B, 1), start_value, dtype=torch.long, device=device), levels[:, :-1]], dim=1)
    if K:
        inputs = inputs.repeat_interleave(K, dim=0)  # rows b-major: row = b * K + k
        cond = torch.eye(K, device=device, dtype=next(model.parameters()).dtype).repeat(B, 1)
    else:
        cond = None
    logits = forward_rows(model, inputs, cond)  # (B*K, N, Q)
    logp = F.log_softmax(logits.float(), dim=-1)
    targets = levels.repeat_interleave(max(K, 1), dim=0)
    ll = logp.gather(-1, targets[:, :, None]).squeeze(-1)
    return ll.view(B, max(K, 1), N), logits.argmax(-1).view(B, max(K, 1), N)


@torch.no_grad()
def pixel_log_likelihoods(model, images) -> torch.Tensor:
    """log p(x_t | x_<t, y=k) for every pixel (first included) and class: images -> (B, K, H*W)."""
    c = _image_config(model)
    return score_levels(model, encode_images(model, images), c["start"])[0].cpu()


def _log_prior(prior, K: int, device) -> torch.Tensor:
    if prior is None:
        return torch.full((K,), -math.log(K), device=device)
    p = _as_tensor(prior, "prior").double().reshape(-1)
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
    ll = pixel_log_likelihoods(model, images)  # (B, K, N)
    joint = ll.cumsum(dim=-1) + _log_prior(prior, K, "cpu")[None, :, None]
    return torch.softmax(joint, dim=1).transpose(1, 2).contiguous()


@task_threads("posterior")
@torch.no_grad()
def class_posterior(model, images, prior=None) -> torch.Tensor:
    """p(y | x) by Bayes' rule over the summed pixel log-likelihoods: images -> (B, K)."""
    K = _check_conditional(model)
    ll = pixel_log_likelihoods(model, images).sum(dim=-1)
    return torch.softmax(ll + _log_prior(prior, K, "cpu")[None], dim=1)


def _check_digits(model, digits) -> list[int | None]:
    K = model.config.cond_channels
    if K == 0:
        if digits not in (None, [None]):
            raise ValueError("This model is unconditional; pass digits=None.")
        return [None]
    if isinstance(digits, (int, np.integer)) and not isinstance(digits, bool):
        digits = [digits]
    if digits is None or isinstance(digits, (str, bytes)) or len(digits) == 0:
        raise ValueError(f"Choose at least one digit from 0 to {K - 1}.")
    out = []
    for d in digits:
        if isinstance(d, bool) or not isinstance(d, (int, np.integer)) or not 0 <= d < K:
            raise ValueError(f"Each digit must be a whole number from 0 to {K - 1}, got {d!r}.")
        out.append(int(d))
    return out


def _conditions(model, labels: torch.Tensor) -> torch.Tensor | None:
    K = model.config.cond_channels
    return F.one_hot(labels, K).to(next(model.parameters()).dtype) if K else None


@task_threads("sample")
@torch.no_grad()
def iter_sample_images(model, digits, n: int = 1, temperature: float = 1.0, generator: torch.Generator | None = None,
                       every: int | None = None) -> Iterator[tuple[int, torch.Tensor]]:
    """Sample n images of each digit, pixel by pixel with the fast generator; yields (pixels done,
    uint8 images (len(digits)*n, H, W) so far, unsampled pixels 0) every `every` pixels (default: one
    image row) and at the end. Rows are digit-major: row i*n + j is the j-th sample of digits[i]."""
    c = _image_config(model)
    digits = _check_digits(model, digits)
    n = _check_count("n", n, 1, MAX_IMAGES)
    if len(digits) * n > MAX_IMAGES:
        raise ValueError(f"At most {MAX_IMAGES} images per call; {len(digits)} digits x {n} asks for {len(digits) * n}.")
    temperature = _check_temperature(temperature)
    N = c["H"] * c["W"]
    every = _check_count("every", every if every is not None else c["W"], 1, N)
    device = _device(model)
    _check_generator(generator, device)
    B = len(digits) * n
    cond = None if digits == [None] else _conditions(model, torch.tensor(digits, device=device).repeat_interleave(n))
    prefix = torch.full((B, 1), c["start"], dtype=torch.long, device=device)
    sampler = make_sampler("greedy" if temperature == 0 else "temperature", temperature=temperature or 1.0, generator=generator)
    out = torch.zeros(B, N, dtype=torch.long, device=device)
    for t, step in enumerate(itertools.islice(generate_fast(model, prefix, sampler, cond), N)):
        out[:, t] = step.sample
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


def _check_mask(known_mask, H: int, W: int) -> torch.Tensor:
    m = _as_tensor(known_mask, "known_mask")
    if tuple(m.shape) != (H, W):
        raise ValueError(f"known_mask must have shape ({H}, {W}), got {tuple(m.shape)}.")
    if m.dtype != torch.bool:
        if m.is_floating_point() or m.is_complex() or not ((m == 0) | (m == 1)).all():
            raise ValueError(f"known_mask must be booleans (True = known pixel), got dtype {m.dtype}.")
        m = m.bool()
    return m


def _systematic_resample(logw: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Systematic resampling per row of log-weights (G, P) -> ancestor indices (G, P) within each row."""
    G, P = logw.shape
    cdf = torch.softmax(logw.double(), dim=1).cumsum(dim=1)
    cdf[:, -1] = 1.0
    u = (torch.rand(G, 1, generator=generator, device=logw.device, dtype=torch.float64)
         + torch.arange(P, device=logw.device, dtype=torch.float64)[None]) / P
    return torch.searchsorted(cdf, u).clamp_(max=P - 1)


@task_threads("complete")
@torch.no_grad()
def complete(model, image, known_mask, digit: int | None = None, n: int = 4, num_particles: int = 32,
             temperature: float = 1.0, generator: torch.Generator | None = None, progress: Progress | None = None,
             return_digits: bool = False):
    """Fill in the unknown pixels of one image (H, W) given known_mask (H, W) bool (True = known).

    The known pixels before the first unknown one (scan order) prime the model; unknown pixels are
    sampled (at `temperature`, 0 = greedy); known pixels after the hole are forced to their values and
    weigh each particle by the model's likelihood of them, with systematic resampling when the effective
    sample size falls below half, so completions agree with what lies below the hole. n independent
    populations of num_particles particles each give one completion apiece, drawn by final weight.
    With digit=None each particle's digit is drawn from p(y | known prefix) and then reweighed like the
    pixels. Known pixels keep their quantized value: out[:, mask] == quantize(image)[mask].
    At temperature T the hole's pixels are drawn from the tempered conditionals q_T ~ p^(1/T) while the
    known pixels below the hole still weigh by the model's own p, so the completions follow
    p(y | prefix) * prod_hole q_T(x_t | x_<t, y) * prod_below p(x_t | x_<t, y), normalized: each step is
    tempered, not the whole posterior p(hole | known)^(1/T) (at T = 1 the two are the same).
    -> uint8 (n, H, W) on the CPU (and the digits (n,) used, with return_digits)."""
    c = _image_config(model)
    H, W, N = c["H"], c["W"], c["H"] * c["W"]
    x_img = _check_images(image, H, W)
    if x_img.shape[0] != 1:
        raise ValueError(f"complete takes one image ({H}, {W}), got {x_img.shape[0]}.")
    mask = _check_mask(known_mask, H, W)
    n = _check_count("n", n, 1, MAX_IMAGES)
    P = _check_count("num_particles", num_particles, 1, MAX_PARTICLE_ROWS)
    if n * P > MAX_PARTICLE_ROWS:
        raise ValueError(f"n x num_particles may be at most {MAX_PARTICLE_ROWS}, got {n} x {P} = {n * P}.")
    temperature = _check_temperature(temperature)
    K = model.config.cond_channels
    if K == 0 and digit is not None:
        raise ValueError("This model is unconditional; leave the digit empty.")
    if digit is not None:
        _check_digits(model, [digit])
    device = _device(model)
    _check_generator(generator, device)
    x = encode_images(model, x_img)[0].to(device)  # (N,)
    known = image_to_sequence(mask[None], c["scan_order"])[0].to(device)  # (N,)
    unknown = (~known).nonzero()
    if unknown.numel() == 0:
        out = decode_levels(model, x[None].expand(n, -1))
        digits = torch.full((n,), -1 if digit is None else digit, dtype=torch.long)
        return (out, digits) if return_digits else out
    u = int(unknown[0])
    G = n * P  # rows population-major: row = g * P + p

    if K == 0:
        labels = None
    elif digit is not None:
        labels = torch.full((G,), digit, dtype=torch.long, device=device)
    else:
        if u == 0:
            probs = torch.full((K,), 1.0 / K)
        else:
            probs = torch.softmax(score_levels(model, x[None, :u], c["start"])[0][0].sum(dim=-1).float(), dim=0)  # p(y | x_<u)
        labels = torch.multinomial(probs.to(device).expand(G, K), 1, generator=generator).squeeze(1)

    cond = None if labels is None else _conditions(model, labels)
    window = torch.cat([torch.tensor([c["start"]], device=device), x[:u]])[-model.receptive_field:]
    state = prime(model, window[None].expand(G, -1), cond, offset=u + 1 - window.shape[0])  # one forward per distinct digit, not per particle
    feed = level_feed(model, state)
    sampler = make_sampler("greedy" if temperature == 0 else "temperature", temperature=temperature or 1.0, generator=generator)
    seq = x[None].repeat(G, 1)
    logw = torch.zeros(n, P, device=device)
    offsets = (torch.arange(n, device=device) * P)[:, None]
    known_list, x_list = known.tolist(), x.tolist()  # Python values: no device sync per pixel
    for t in range(u, N):
        logits = state.logits
        if known_list[t]:
            value = x[t].expand(G)
            logw += F.log_softmax(logits.float(), dim=-1)[:, x_list[t]].view(n, P)
            ess = torch.softmax(logw, dim=1).pow(2).sum(dim=1).reciprocal()
            low = ess < P / 2
            if low.any():
                ancestors = _systematic_resample(logw, generator)
                ancestors = torch.where(low[:, None], ancestors, torch.arange(P, device=device)[None])
                index = (ancestors + offsets).reshape(-1)
                state.reorder(index)
                seq = seq.index_select(0, index)
                if labels is not None:
                    labels = labels.index_select(0, index)
                logw = torch.where(low[:, None], torch.zeros_like(logw), logw)
        else:
            value = sampler(logits)
            seq[:, t] = value
        if t + 1 < N:
            state.step(feed(value))
        if progress is not None and ((t + 1 - u) % W == 0 or t + 1 == N):
            progress(t + 1 - u, N - u)
    pick = torch.multinomial(torch.softmax(logw, dim=1), 1, generator=generator).squeeze(1) + offsets[:, 0]
    out = decode_levels(model, seq[pick])
    if return_digits:
        return out, (labels[pick].cpu() if labels is not None else torch.full((n,), -1, dtype=torch.long))
    return out
