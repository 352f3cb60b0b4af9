"""Exact completion for models that can read the pixels in any order (`model.any_order`, e.g. MADE,
Germain et al. 2015): put every known pixel first, then the hole, and sample the hole pixel by pixel.
Each completion is then an exact draw from the model's p(hole | all known pixels, y) in that order, with
no particles or weights: unlike a raster-order model, which can only condition on the known pixels
above the first unknown one and has to reweigh particles by the pixels after it (image_tasks.complete).
With no digit given, the digit too is drawn exactly, from p(y | known) by Bayes' rule under a uniform prior."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from engine.sampling import make_sampler


def known_first_order(known: torch.Tensor) -> torch.Tensor:
    """known (N,) bool -> the order that reads the known positions first, then the others (each in raster order)."""
    known = known.view(-1).bool()
    return torch.cat([known.nonzero().view(-1), (~known).nonzero().view(-1)])


@torch.no_grad()
def log_likelihood_of_known(model, levels: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
    """log p(known pixels | y=k) for every class, exact: levels (N,), known (N,) bool -> (K,) (K=1 unconditional)."""
    order = known_first_order(known).to(levels.device)
    n_known = int(known.sum())
    K = model.config.cond_channels
    rows = levels[order][None].expand(max(K, 1), -1)
    cond = torch.eye(K, device=levels.device, dtype=next(model.parameters()).dtype) if K else None
    logp = model.log_probs(rows, cond, order=order)[:, :n_known]
    return logp.gather(-1, rows[:, :n_known, None]).squeeze(-1).sum(dim=1)


@torch.no_grad()
def complete_known_first(model, levels: torch.Tensor, known: torch.Tensor, labels: torch.Tensor | None, n: int,
                         temperature: float = 1.0, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """n exact completions of one level image: levels (N,) long in raster positions, known (N,) bool,
    labels (n,) long digits or None (drawn from p(y | known); ignored by an unconditional model) ->
    (levels (n, N) with the known pixels kept, the digits (n,) used or None). temperature 0 = greedy."""
    if not getattr(model, "any_order", False):
        raise ValueError(f"{model.family_name or type(model).__name__} reads pixels in one fixed order; exact completion needs a model that can put any pixel first.")
    device = levels.device
    N = levels.shape[0]
    K = model.config.cond_channels
    known = known.to(device).bool()
    order = known_first_order(known)
    n_known = int(known.sum())
    if K and labels is None:
        posterior = torch.softmax(log_likelihood_of_known(model, levels, known).double(), dim=0)
        labels = torch.multinomial(posterior.float().expand(n, K), 1, generator=generator).squeeze(1)
    cond = F.one_hot(labels.to(device), K).to(next(model.parameters()).dtype) if K else None
    out = levels[None].repeat(n, 1)
    state = model.start(levels[order[:n_known]][None].expand(n, -1), cond, order=order)
    sampler = make_sampler("greedy" if temperature == 0 else "temperature", temperature=temperature or 1.0, generator=generator)
    positions = order.tolist()
    for t in range(n_known, N):
        value = sampler(state.log_probs)
        out[:, positions[t]] = value
        if t + 1 < N:
            state.step(value)
    return out, (labels if K else None)
