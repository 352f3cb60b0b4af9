"""Several image models sampling at the same time, for a side-by-side comparison (the Compare page, a
notebook): each model's own fast generation state (engine/image_tasks.iter_sample_images) takes a few
rows in turn, round robin, and the time each spends is kept apart, so one model's speed is not charged
to another."""

from __future__ import annotations

import time
from typing import Iterator

import torch

from engine.image_tasks import iter_sample_images


def iter_sample_together(models: dict, digits: dict, n: int = 1, temperature: float = 1.0, seed: int = 0,
                         every: int | None = None) -> Iterator[tuple[str, int, torch.Tensor, float]]:
    """models {name: model}, digits {name: digit, None for an unconditional model}: n samples per model, all
    with the same seed, stepped round robin `every` pixels at a time (default one image row). Yields
    (name, pixels done, uint8 images (n, H, W) so far, seconds that model has taken so far); each model's
    last yield has all its pixels done. A ValueError of any model's arguments comes in the first round."""
    runs = {name: iter_sample_images(model, [digits.get(name)], n, temperature, generator=torch.Generator().manual_seed(seed),
                                     every=every) for name, model in models.items()}
    own = dict.fromkeys(runs, 0.0)
    active = list(runs)
    while active:
        for name in list(active):
            tick = time.perf_counter()
            try:
                done, images = next(runs[name])  # a run checks its arguments at its first step
            except StopIteration:
                active.remove(name)
                continue
            own[name] += time.perf_counter() - tick
            yield name, done, images, own[name]
