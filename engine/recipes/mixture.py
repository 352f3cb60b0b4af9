"""Fitting a mixture's weights (engine.models.mixture) on held-out images: every weighting on a grid is
scored by teacher-forced pixel accuracy and NLL under the true class, from ONE forward per member."""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict
from typing import Callable

import torch
import torch.nn.functional as F

from engine.image_tasks import forward_rows
from engine.models import model_type_of
from engine.models.mixture import Mixture, MixtureConfig


def weight_grid(members: int, step: float) -> list[tuple[float, ...]]:
    """Every way to split 1 into `members` positive multiples of step, e.g. (2, 0.25) -> (0.25, 0.75), (0.5, 0.5), (0.75, 0.25)."""
    n = round(1 / step)
    return [tuple(c / n for c in counts) for counts in itertools.product(range(1, n), repeat=members) if sum(counts) == n]


def mixture_of(models: list, weights) -> Mixture:
    """A Mixture holding copies of the given (trained) models' weights."""
    members = [{"model_type": model_type_of(m), "model": asdict(m.config)} for m in models]
    mixture = Mixture(MixtureConfig(members=members, weights=list(weights)))
    for target, source in zip(mixture.members, models):
        target.load_state_dict(source.state_dict())
    return mixture.to(next(models[0].parameters()).device).eval()


@torch.no_grad()
def score_weightings(models: list, levels: torch.Tensor, labels: torch.Tensor, grid: list[tuple[float, ...]],
                     batch_images: int = 50, progress: Callable[[int], None] | None = None) -> list[dict]:
    """levels (N, T) with labels (N,) -> per weighting in grid: {"weights", "pixel_accuracy", "nll_nats_per_image"}
    of the mixture sum_m w_m p_m(x_t | x_<t, y) under the true class. progress(images done) after each batch."""
    K = models[0].config.cond_channels
    device = next(models[0].parameters()).device
    log_w = torch.tensor([[math.log(w) for w in ws] for ws in grid], device=device)  # (G, M)
    hits = torch.zeros(len(grid), dtype=torch.float64)
    nll = torch.zeros(len(grid), dtype=torch.float64)
    for s in range(0, levels.shape[0], batch_images):
        x = levels[s:s + batch_images].to(device).long()
        cond = F.one_hot(labels[s:s + batch_images].to(device).long(), K).float() if K else None
        logp = torch.stack([forward_rows(m, x, cond).float() for m in models])  # (M, b, T, Q)
        for g in range(len(grid)):
            mix = torch.logsumexp(logp + log_w[g][:, None, None, None], dim=0)
            hits[g] += (mix.argmax(dim=-1) == x).sum().item()
            nll[g] -= mix.gather(-1, x[..., None]).sum().item()
        if progress is not None:
            progress(min(s + batch_images, levels.shape[0]))
    N, T = levels.shape
    return [{"weights": list(ws), "pixel_accuracy": hits[g].item() / (N * T), "nll_nats_per_image": nll[g].item() / N}
            for g, ws in enumerate(grid)]


def best_weighting(rows: list[dict]) -> dict:
    """Highest pixel accuracy; ties go to the lower NLL."""
    return max(rows, key=lambda r: (r["pixel_accuracy"], -r["nll_nats_per_image"]))
