"""Widget groups. Each draws a few widgets and returns plain values (numbers, dataclasses), so pages
read as widgets -> values -> engine call -> plot."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import streamlit as st

from engine.data.fourier import fourier_series


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


@dataclass(frozen=True)
class SamplerSettings:
    horizon: int
    num_trajectories: int
    temperature: float
    seed: int


# Defaults that read well on a projector: a clear fundamental with two smaller harmonics.
_DEFAULT_COEFFS = (0.8, 0.35, 0.15)
_DEFAULT_PHASES = (0.0, 1.0, -2.0)


def model_picker(usable: list[str], unavailable: dict[str, str], label: str = "Models", key: str = "models") -> list[str]:
    """Multiselect over usable models (all chosen by default); lists the unusable ones with the reason."""
    chosen = st.multiselect(label, usable, default=usable, key=key)
    for name, reason in unavailable.items():
        st.caption(f"**{name}** unavailable: {reason}")
    return chosen


def fourier_curve_controls(data: dict, min_length: int = 0, key: str = "curve") -> FourierCurve:
    """Every parameter of the curve, with defaults from a model's config.json `data` section; the
    default length is at least `min_length`, so the default forecast can be compared with the truth."""
    train = data.get("train_params", {})
    periods = [float(p) for p in data.get("periods") or []]
    if periods:
        period = st.selectbox("Period (the model's condition)", periods, index=len(periods) // 2,
                              format_func=lambda p: f"{p:g} s", key=f"{key}.period")
    else:
        period = st.number_input("Period (s)", min_value=0.1, value=6.0, step=0.5, key=f"{key}.period")
    lo, hi = train.get("terms", [3, 3])
    terms = int(st.number_input("Number of terms", min_value=1, max_value=12, value=int(lo), key=f"{key}.terms",
                                help=f"The models were trained on {lo}..{hi} terms."))
    coeffs, phases = [], []
    for n in range(terms):
        left, right = st.columns(2)
        coeffs.append(left.slider(f"a{n + 1}", -1.5, 1.5, _DEFAULT_COEFFS[n] if n < len(_DEFAULT_COEFFS) else 0.0,
                                  0.05, key=f"{key}.coeff{n}"))
        phases.append(right.slider(f"phase {n + 1}", -math.pi, math.pi, _DEFAULT_PHASES[n] if n < len(_DEFAULT_PHASES) else 0.0,
                                   0.05, key=f"{key}.phase{n}"))
    bias = st.slider("Bias b (adds b/2)", -1.0, 1.0, 0.0, 0.05, key=f"{key}.bias")
    trend = st.slider("Linear trend (per second)", -0.05, 0.05, 0.0, 0.001, format="%.3f", key=f"{key}.trend")
    noise = st.slider("Noise (standard deviation)", 0.0, 0.3, 0.0, 0.01, key=f"{key}.noise")
    dt = st.number_input("dt (seconds per sample)", min_value=0.001, value=float(data.get("dt", 0.02)), step=0.005,
                         format="%.3f", key=f"{key}.dt")
    length = int(st.number_input("Curve length (samples)", min_value=1, value=max(int(train.get("length", 2048)), min_length), step=100,
                                 key=f"{key}.length"))
    return FourierCurve(float(period), tuple(coeffs), tuple(phases), bias, trend, noise, float(dt), length)


def observation_controls(default: int = 300, key: str = "observe") -> int:
    """How many samples of the curve the model sees; 0 means 'sample from the prior'."""
    mode = st.radio("Mode", ["Continue the curve", "Sample from the prior"], horizontal=True, key=f"{key}.mode",
                    help="From the prior: nothing observed, only the period is given.")
    if mode == "Sample from the prior":
        return 0
    return int(st.number_input("Observed samples", min_value=1, value=default, step=50, key=f"{key}.n"))


def sampler_controls(horizon: int = 400, trajectories: int = 20, temperature: float = 1.0, seed: int = 0,
                     key: str = "sampler") -> SamplerSettings:
    """Horizon, number of trajectories, temperature (0 = greedy) and seed."""
    horizon = st.number_input("Horizon (steps to sample)", min_value=1, value=horizon, step=50, key=f"{key}.horizon")
    trajectories = st.number_input("Trajectories", min_value=1, value=trajectories, step=5, key=f"{key}.trajectories")
    temperature = st.slider("Temperature", 0.0, 2.0, temperature, 0.05, key=f"{key}.temperature", help="0 is greedy.")
    seed = st.number_input("Seed", min_value=0, value=seed, step=1, key=f"{key}.seed")
    return SamplerSettings(int(horizon), int(trajectories), float(temperature), int(seed))
