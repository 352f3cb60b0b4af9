"""Autoregressive generation for every family, through the model interface (engine/models/base.py):
`model.start(prefix, cond)` makes a per-call state (a family's fast state, e.g. WaveNet's queues after
Paine et al. 2016), and each step samples from its log-probabilities and feeds the sample back.
`generate_naive` runs the same loop on `NaiveState`, which re-runs the teacher-forced `log_probs` on
the whole sequence at every step: the oracle the fast states are tested against.

Both generators are iterators of `Step`s; the caller decides how many to take. Nothing is stored on
the (possibly shared) model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import torch

from engine.models.base import AutoregressiveModel, GenerationState, NaiveState
from engine.sampling import Sampler


@dataclass
class Step:
    sample: torch.Tensor  # (B,) level drawn for the next position
    logits: torch.Tensor  # (B, Q) the log-probabilities it was drawn from (valid logits)


def _generate(state: GenerationState, sampler: Sampler) -> Iterator[Step]:
    """Sample from the state and feed the sample back until the model's sequence is complete (forever
    for a model of any length)."""
    while state.log_probs is not None:
        log_probs = state.log_probs
        sample = sampler(log_probs)
        yield Step(sample, log_probs)
        state.step(sample)


@torch.no_grad()
def generate_fast(model: AutoregressiveModel, prefix: torch.Tensor, sampler: Sampler,
                  cond: torch.Tensor | None = None) -> Iterator[Step]:
    """After prefix (B, T0) levels under cond (B, K), a Step per generated position, from the model's own
    generation state (`model.start`)."""
    yield from _generate(model.start(prefix, cond), sampler)


@torch.no_grad()
def generate_naive(model: AutoregressiveModel, prefix: torch.Tensor, sampler: Sampler,
                   cond: torch.Tensor | None = None) -> Iterator[Step]:
    """Same contract as generate_fast, re-running `log_probs` on the whole sequence for every step."""
    yield from _generate(NaiveState(model, prefix, cond), sampler)
