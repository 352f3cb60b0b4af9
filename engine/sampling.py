"""Samplers: functions `logits (B, Q) -> sample (B,)`, each explicit about its randomness through an
optional `torch.Generator`; plus the Gumbel-softmax relaxation (Jang et al. 2017; Maddison et al.
2017) used for n-step unrolled training."""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

Sampler = Callable[[torch.Tensor], torch.Tensor]


def greedy(logits: torch.Tensor) -> torch.Tensor:
    """The most likely level: (B, Q) -> (B,)."""
    return logits.argmax(dim=-1)


def _check_temperature(temperature: float) -> None:
    if not (isinstance(temperature, (int, float)) and temperature > 0 and temperature == temperature):
        raise ValueError(f"temperature must be a positive number, got {temperature!r}.")


def categorical(logits: torch.Tensor, temperature: float = 1.0, generator: torch.Generator | None = None) -> torch.Tensor:
    """A draw from softmax(logits / temperature): (B, Q) -> (B,)."""
    _check_temperature(temperature)
    # Inverse-CDF sampling: one uniform per row against the cumulative probabilities. Exact, and a
    # handful of small ops instead of torch.multinomial, which costs ~0.2 ms per call at (20, 127) on
    # this project's CPU (a tenth of a fast generation step). Levels of probability 0 are never drawn:
    # a level j is drawn iff cdf[j-1] <= u < cdf[j].
    cdf = torch.softmax(logits.float() / temperature, dim=-1).cumsum_(-1)
    u = torch.rand(cdf.shape[:-1] + (1,), generator=generator, device=cdf.device, dtype=cdf.dtype) * cdf[..., -1:]
    return (cdf <= u).sum(-1).clamp_(max=cdf.shape[-1] - 1)


def temperature_sampler(temperature: float = 1.0, generator: torch.Generator | None = None) -> Sampler:
    """Stochastic sampler with a temperature; temperature 0 means greedy."""
    if temperature == 0:
        return greedy
    _check_temperature(temperature)
    return lambda logits: categorical(logits, temperature, generator)


def top_k_sampler(k: int, temperature: float = 1.0, generator: torch.Generator | None = None) -> Sampler:
    """Sample among the k most likely levels only."""
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"top-k needs an integer k >= 1, got {k!r}.")
    _check_temperature(temperature)

    def sample(logits: torch.Tensor) -> torch.Tensor:
        kk = min(k, logits.shape[-1])
        values, indices = logits.topk(kk, dim=-1)
        choice = categorical(values, temperature, generator)
        return indices.gather(-1, choice.unsqueeze(-1)).squeeze(-1)

    return sample


def gumbel_noise(shape, generator: torch.Generator | None = None, device=None) -> torch.Tensor:
    u = torch.rand(shape, generator=generator, device=device).clamp_(1e-10, 1.0 - 1e-7)
    return -torch.log(-torch.log(u))


def gumbel_softmax(
    logits: torch.Tensor,
    tau: float = 1.0,
    hard: bool = True,
    generator: torch.Generator | None = None,
    noise: torch.Tensor | None = None,
) -> torch.Tensor:
    """Differentiable sample (B, Q) -> (B, Q). Soft: softmax((logits + g) / tau). Hard: the one-hot
    argmax in the forward pass with the soft sample's gradient (straight-through). `noise` supplies
    the Gumbel noise g explicitly (tests compare two computations on the same draw)."""
    _check_temperature(tau)
    g = gumbel_noise(logits.shape, generator, logits.device) if noise is None else noise
    g = g.to(logits.dtype)
    soft = torch.softmax((logits + g) / tau, dim=-1)
    if not hard:
        return soft
    index = soft.argmax(dim=-1, keepdim=True)
    hard_sample = torch.zeros_like(soft).scatter_(-1, index, 1.0)
    return hard_sample - soft.detach() + soft


def make_sampler(name: str, temperature: float = 1.0, top_k: int | None = None, generator: torch.Generator | None = None) -> Sampler:
    """By name, for pages and scripts: 'greedy', 'temperature' or 'top-k'."""
    if name == "greedy":
        return greedy
    if name == "temperature":
        return temperature_sampler(temperature, generator)
    if name == "top-k":
        return top_k_sampler(top_k or 1, temperature, generator)
    raise ValueError(f"Unknown sampler {name!r}; choose 'greedy', 'temperature' or 'top-k'.")
