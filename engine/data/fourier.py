"""A randomized Fourier-series dataset, after the one in cheind/autoregressive:
y(t) = b/2 + sum_n a_n cos(2 pi n t / P + phi_n) + kappa t + noise, with coefficients decaying as
10^linspace(0, -s, N). Seeded and reproducible; train, validation and test draw from independent
seed streams, so the splits never share a curve. The period is the model's condition."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

SPLITS = {"train": 0, "val": 1, "test": 2}


@dataclass
class FourierParams:
    num_curves: int = 4096
    length: int = 2048  # samples per curve
    dt: float = 0.02  # seconds per sample
    terms: tuple[int, int] = (3, 3)  # inclusive range of the number of terms N
    periods: list[float] = field(default_factory=lambda: [5.0, 6.0, 7.0, 8.0, 9.0])  # condition k <-> periods[k]
    coeff_range: tuple[float, float] = (-1.0, 1.0)
    smoothness: float = 0.75
    phase_range: tuple[float, float] = (-math.pi, math.pi)
    bias_range: tuple[float, float] = (0.0, 0.0)
    trend_range: tuple[float, float] = (0.0, 0.0)
    noise: float = 0.0
    seed: int = 0

    def __post_init__(self):
        self.terms = tuple(self.terms)
        self.coeff_range = tuple(self.coeff_range)
        self.phase_range = tuple(self.phase_range)
        self.bias_range = tuple(self.bias_range)
        self.trend_range = tuple(self.trend_range)
        self.periods = [float(p) for p in self.periods]
        if self.num_curves < 1 or self.length < 2:
            raise ValueError("FourierParams needs num_curves >= 1 and length >= 2.")
        if not (1 <= self.terms[0] <= self.terms[1]):
            raise ValueError(f"terms must be a range 1 <= lo <= hi, got {self.terms}.")
        if not self.periods or min(self.periods) <= 0:
            raise ValueError("periods must be a non-empty list of positive numbers.")
        if self.dt <= 0 or self.noise < 0:
            raise ValueError("dt must be positive and noise non-negative.")

    def as_dict(self) -> dict:
        return asdict(self)


def fourier_series(t: np.ndarray, coeffs, phases, period: float, bias: float = 0.0, trend: float = 0.0) -> np.ndarray:
    """y(t) = bias/2 + sum_n coeffs[n-1] cos(2 pi n t / period + phases[n-1]) + trend t."""
    t = np.asarray(t, dtype=np.float64)
    n = np.arange(1, len(coeffs) + 1)[:, None]
    waves = np.asarray(coeffs, dtype=np.float64)[:, None] * np.cos(
        2 * np.pi * n * t[None, :] / period + np.asarray(phases, dtype=np.float64)[:, None]
    )
    return bias / 2 + waves.sum(axis=0) + trend * t


def decay(num_terms: int, smoothness: float) -> np.ndarray:
    """Per-term scale 10^linspace(0, -s, N)."""
    return np.logspace(0, -smoothness, num_terms)


def sample_curve_params(params: FourierParams, rng: np.random.Generator) -> dict:
    terms = int(rng.integers(params.terms[0], params.terms[1] + 1))
    condition = int(rng.integers(len(params.periods)))
    return {
        "condition": condition,
        "period": params.periods[condition],
        "coeffs": rng.uniform(*params.coeff_range, size=terms) * decay(terms, params.smoothness),
        "phases": rng.uniform(*params.phase_range, size=terms),
        "bias": float(rng.uniform(*params.bias_range)),
        "trend": float(rng.uniform(*params.trend_range)),
    }


def make_curves(params: FourierParams, split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
    """-> values (N, T) float32, conditions (N,) long (index into params.periods)."""
    if split not in SPLITS:
        raise ValueError(f"Unknown split {split!r}; choose one of {list(SPLITS)}.")
    rng = np.random.default_rng(np.random.SeedSequence([params.seed, SPLITS[split]]))
    t = np.arange(params.length) * params.dt
    values = np.empty((params.num_curves, params.length), dtype=np.float32)
    conditions = np.empty(params.num_curves, dtype=np.int64)
    for i in range(params.num_curves):
        p = sample_curve_params(params, rng)
        y = fourier_series(t, p["coeffs"], p["phases"], p["period"], p["bias"], p["trend"])
        if params.noise > 0:
            y = y + rng.normal(0.0, params.noise, size=y.shape)
        values[i] = y
        conditions[i] = p["condition"]
    return torch.from_numpy(values), torch.from_numpy(conditions)


MAX_CURVE_LENGTH = 100_000  # a request may not ask for a longer curve (it is plotted whole)


@dataclass(frozen=True)
class FourierCurve:
    """One curve y(t) = bias/2 + sum_n a_n cos(2 pi n t / P + phi_n) + trend t + noise, sampled
    `length` times every `dt` seconds."""

    period: float
    coeffs: tuple[float, ...]
    phases: tuple[float, ...]
    bias: float = 0.0
    trend: float = 0.0
    noise: float = 0.0
    dt: float = 0.02
    length: int = 2048
    noise_seed: int = 0

    def values(self) -> tuple[np.ndarray, np.ndarray]:
        """-> t (T,), y (T,)."""
        if self.length < 1 or not self.dt > 0:
            raise ValueError(f"The curve needs at least one sample and dt > 0 (got length {self.length}, dt {self.dt}).")
        if self.length > MAX_CURVE_LENGTH:
            raise ValueError(f"A curve may have at most {MAX_CURVE_LENGTH:,} samples (asked for {self.length:,}): "
                             f"it is computed and plotted whole. Make it shorter.")
        t = np.arange(self.length) * self.dt
        y = fourier_series(t, self.coeffs, self.phases, self.period, self.bias, self.trend)
        if self.noise > 0:
            y = y + np.random.default_rng(self.noise_seed).normal(0.0, self.noise, size=y.shape)
        return t, y

    def observed(self, n: int) -> np.ndarray:
        """The first n samples (T0,); raises ValueError when the curve is shorter than that."""
        if n > self.length:
            raise ValueError(f"The curve has {self.length} samples, so you cannot observe {n}. "
                             f"Lower the number of observed samples or make the curve longer.")
        return self.values()[1][:n]


def period_to_condition(period: float, periods: list[float]) -> int:
    """The condition index of a period; raises ValueError for a period the model was not trained on."""
    for k, p in enumerate(periods):
        if abs(p - period) < 1e-6:
            return k
    raise ValueError(f"Period {period} s is not one the model knows; choose one of {periods}.")
