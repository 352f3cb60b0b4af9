"""Training recipe for the randomized Fourier-series forecasting task."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields

import torch

from engine.data.fourier import FourierParams, make_curves
from engine.encoding import quantize
from engine.training import evaluate_series


@dataclass
class FourierData(FourierParams):
    low: float = -1.6  # quantization range of the signal
    high: float = 1.6
    crop: int = 640  # training window (samples) cut at random from each curve
    val_curves: int = 64
    test_curves: int = 256


class FourierRecipe:
    data_class = FourierData

    def __init__(self, data: dict, model_config):
        self.data = FourierData(**data)
        self.Q = model_config.quantization_levels
        self.K = model_config.cond_channels
        if self.K not in (0, len(self.data.periods)):
            raise ValueError(f"model.cond_channels must be 0 or the number of periods ({len(self.data.periods)}).")
        if self.data.crop > self.data.length or self.data.crop < 2:
            raise ValueError(f"data.crop ({self.data.crop}) must lie in 2..data.length ({self.data.length}).")
        self._splits = {}

    def params(self, split: str) -> FourierParams:
        base = {f.name: getattr(self.data, f.name) for f in fields(FourierParams)}
        if split == "val":
            base["num_curves"] = self.data.val_curves
        elif split == "test":
            base["num_curves"] = self.data.test_curves
        return FourierParams(**base)

    def split(self, split: str):
        """-> levels (N, T) long, one-hot conditions (N, K) or None."""
        if split not in self._splits:
            values, conds = make_curves(self.params(split), split)
            levels = quantize(values, self.Q, self.data.low, self.data.high)
            onehot = torch.nn.functional.one_hot(conds, len(self.data.periods)).float() if self.K else None
            self._splits[split] = (levels, onehot)
        return self._splits[split]

    def batch(self, step: int, rank: int, batch_size: int, generator: torch.Generator):
        levels, conds = self.split("train")
        idx = torch.randint(levels.shape[0], (batch_size,), generator=generator)
        start = torch.randint(levels.shape[1] - self.data.crop + 1, (batch_size,), generator=generator)
        cols = start[:, None] + torch.arange(self.data.crop)[None, :]
        seq = levels[idx[:, None], cols]
        return seq, (None if conds is None else conds[idx])

    def evaluate(self, model, split: str, device) -> dict:
        levels, conds = self.split(split)
        return evaluate_series(model, levels.to(device), None if conds is None else conds.to(device), self.data.low, self.data.high)

    def data_config(self) -> dict:
        """What inference needs: quantization, sampling interval, what each condition means."""
        d = self.data
        return {
            "task": "fourier",
            "quantization": {"levels": self.Q, "low": d.low, "high": d.high, "rule": "mid-tread: round((clip(y, low, high) - low) / (high - low) * (Q - 1))"},
            "dt": d.dt,
            "conditions": [f"period {p:g} s" for p in d.periods] if self.K else [],
            "periods": d.periods if self.K else [],
            "train_params": {k: v for k, v in asdict(d).items()},
        }

    def card_data_text(self) -> str:
        d = self.data
        return (
            f"Randomized Fourier series y(t) = b/2 + sum_n a_n cos(2 pi n t / P + phi_n) + kappa t + noise, "
            f"{d.terms[0]}..{d.terms[1]} terms, periods {d.periods} s (the condition), coefficients U{d.coeff_range} "
            f"decaying by 10^linspace(0, -{d.smoothness}, N), phases U({d.phase_range[0]:.3f}, {d.phase_range[1]:.3f}), "
            f"bias U{d.bias_range}, trend U{d.trend_range}, noise sd {d.noise}, dt {d.dt} s, {d.length} samples per curve. "
            f"Train: {d.num_curves} curves (random {d.crop}-sample crops), validation {d.val_curves}, test {d.test_curves} "
            f"curves, each split from its own seed stream (seed {d.seed}), so no curve is shared. "
            f"Preprocessing: values clipped to [{d.low}, {d.high}] and quantized mid-tread to Q={self.Q} levels."
        )
