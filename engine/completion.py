"""Completing a partly known image with an autoregressive model of any family: sequential Monte Carlo
(Doucet, de Freitas and Gordon 2001) over the model's generation state for a model that generates in
one fixed order, and exact conditioning for a family that can put any pixel first (`any_order`: the
known pixels first, then the unknown ones sampled given all of them)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from engine.encoding import image_to_sequence
from engine.images import (
    MAX_IMAGES,
    MAX_PARTICLE_ROWS,
    Progress,
    check_count,
    check_digits,
    check_generator,
    check_images,
    check_mask,
    check_temperature,
    conditions,
    decode_levels,
    encode_images,
    image_config,
    model_device,
    observed_scores,
)
from engine.sampling import make_sampler
from engine.threads import task_threads


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

    A model that generates in one fixed order: the known pixels before the first unknown one (scan order)
    prime the model; unknown pixels are sampled (at `temperature`, 0 = greedy); known pixels after the
    hole are forced to their values and weigh each particle by the model's likelihood of them, with
    systematic resampling when the effective sample size falls below half, so completions agree with
    what lies below the hole. n independent populations of num_particles particles each give one
    completion apiece, drawn by final weight. With digit=None each particle's digit is drawn from
    p(y | known prefix) and then reweighed like the pixels.
    A model that can put any pixel first (`model.any_order`) conditions on all known pixels exactly
    instead: they come first in its order, the digit (digit=None) is drawn from p(y | known pixels), and
    num_particles is not used. Known pixels keep their quantized value: out[:, mask] == quantize(image)[mask].
    At temperature T (fixed order) the hole's pixels are drawn from the tempered conditionals q_T ~ p^(1/T)
    while the known pixels below the hole still weigh by the model's own p, so the completions follow
    p(y | prefix) * prod_hole q_T(x_t | x_<t, y) * prod_below p(x_t | x_<t, y), normalized: each step is
    tempered, not the whole posterior p(hole | known)^(1/T) (at T = 1 the two are the same).
    -> uint8 (n, H, W) on the CPU (and the digits (n,) used, -1 for an unconditional model, with return_digits)."""
    c = image_config(model)
    H, W = c["H"], c["W"]
    x_img = check_images(image, H, W)
    if x_img.shape[0] != 1:
        raise ValueError(f"complete takes one image ({H}, {W}), got {x_img.shape[0]}.")
    mask = check_mask(known_mask, H, W)
    n = check_count("n", n, 1, MAX_IMAGES)
    P = check_count("num_particles", num_particles, 1, MAX_PARTICLE_ROWS)
    if n * P > MAX_PARTICLE_ROWS and not model.any_order:  # an any-order model runs n rows, no particles
        raise ValueError(f"n x num_particles may be at most {MAX_PARTICLE_ROWS}, got {n} x {P} = {n * P}.")
    temperature = check_temperature(temperature)
    K = model.config.cond_channels
    if K == 0 and digit is not None:
        raise ValueError("This model is unconditional; leave the digit empty.")
    if digit is not None:
        check_digits(model, [digit])
    device = model_device(model)
    check_generator(generator, device)
    x = encode_images(model, x_img)[0].to(device)  # (N,)
    known = image_to_sequence(mask[None], c["scan_order"])[0].to(device)  # (N,)
    sampler = make_sampler("greedy" if temperature == 0 else "temperature", temperature=temperature or 1.0, generator=generator)
    if known.all():
        seq, labels = x[None].expand(n, -1), (None if digit is None else torch.full((n,), digit, device=device))
    elif model.any_order:  # the family conditions on every known pixel exactly: no particles needed
        seq, labels = _complete_in_any_order(model, x, known, digit, n, sampler, generator, progress, W)
    else:
        seq, labels = _complete_by_smc(model, x, known, digit, n, P, sampler, generator, progress, W)
    out = decode_levels(model, seq)
    if return_digits:
        return out, (labels.cpu() if labels is not None else torch.full((n,), -1, dtype=torch.long))
    return out


def _draw_digits(probs: torch.Tensor, rows: int, generator, device) -> torch.Tensor:
    """rows digits drawn from p(y | known pixels) probs (K,)."""
    return torch.multinomial(probs.to(device).expand(rows, -1), 1, generator=generator).squeeze(1)


def _labels(model, x, known_rows: int, digit, rows: int, generator, device) -> torch.Tensor | None:
    """The digit of each of `rows` rows: None (unconditional), the given digit, or drawn from
    p(y | x_<known_rows) with a uniform prior."""
    K = model.config.cond_channels
    if K == 0:
        return None
    if digit is not None:
        return torch.full((rows,), digit, dtype=torch.long, device=device)
    if known_rows == 0:
        probs = torch.full((K,), 1.0 / K)
    else:
        # a fixed-length family reads whole images: score all of x, of which rows < known_rows read only x_<known_rows
        scored = x[None] if model.sequence_length is not None else x[None, :known_rows]
        probs = torch.softmax(observed_scores(model, scored)[0][:, :known_rows].sum(dim=-1).float(), dim=0)
    return _draw_digits(probs, rows, generator, device)


def _complete_by_smc(model, x, known, digit, n: int, P: int, sampler, generator, progress, W: int):
    """Sequential Monte Carlo in the model's scan order from the first unknown pixel u on: -> the chosen
    particle of each population (n, N) and its digits (n,) (None for an unconditional model)."""
    device, N = x.device, x.shape[0]
    u = int((~known).nonzero()[0])
    G = n * P  # rows population-major: row = g * P + p
    labels = _labels(model, x, u, digit, G, generator, device)
    cond = None if labels is None else conditions(model, labels)
    state = model.start(x[None, :u].expand(G, -1), cond)  # a family may prime one row per distinct digit, not per particle
    seq = x[None].repeat(G, 1)
    logw = torch.zeros(n, P, device=device)
    offsets = (torch.arange(n, device=device) * P)[:, None]
    known_list, x_list = known.tolist(), x.tolist()  # Python values: no device sync per pixel
    for t in range(u, N):
        log_probs = state.log_probs
        if known_list[t]:
            value = x[t].expand(G)
            logw += F.log_softmax(log_probs.float(), dim=-1)[:, x_list[t]].view(n, P)
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
            value = sampler(log_probs)
            seq[:, t] = value
        if t + 1 < N:
            state.step(value)
        if progress is not None and ((t + 1 - u) % W == 0 or t + 1 == N):
            progress(t + 1 - u, N - u)
    pick = torch.multinomial(torch.softmax(logw, dim=1), 1, generator=generator).squeeze(1) + offsets[:, 0]
    return seq[pick], (None if labels is None else labels[pick])


def _complete_in_any_order(model, x, known, digit, n: int, sampler, generator, progress, W: int):
    """Exact conditioning for a family that takes any order (`model.any_order`): the order puts the
    known pixels first (scan order among them), then the unknown ones; the state after the known
    values (`model.start(prefix, cond, order=order)`) samples each unknown pixel given all known
    pixels and the unknown ones drawn before it. -> completions (n, N), digits (n,) or None."""
    device, N = x.device, x.shape[0]
    order = torch.cat([known.nonzero()[:, 0], (~known).nonzero()[:, 0]])
    k = int(known.sum())
    K = model.config.cond_channels
    labels = None
    if K:
        labels = torch.full((n,), digit, dtype=torch.long, device=device) if digit is not None else None
        if labels is None:  # p(y | known pixels), uniform prior: the known pixels' rows under each class
            rows = model.log_probs(x[None].expand(K, -1), conditions(model, torch.arange(K, device=device)), order=order)
            ll = rows.float().gather(-1, x[None, :, None].expand(K, -1, 1))[..., 0][:, known].sum(dim=1)
            labels = _draw_digits(torch.softmax(ll, dim=0), n, generator, device)
    cond = None if labels is None else conditions(model, labels)
    state = model.start(x[order[:k]][None].expand(n, -1), cond, order=order)
    seq = x[None].repeat(n, 1)
    for i, t in enumerate(order[k:].tolist()):
        value = sampler(state.log_probs)
        seq[:, t] = value
        if k + i + 1 < N:
            state.step(value)
        if progress is not None and ((i + 1) % W == 0 or k + i + 1 == N):
            progress(i + 1, N - k)
    return seq, labels
