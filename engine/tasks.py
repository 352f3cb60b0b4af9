"""What pages and scripts call: forecasting a Fourier series, and (re-exported from image_tasks) the
MNIST tasks: sampling, completion and Bayes classification of images.
Every task validates its input and raises ValueError with a sentence a user understands, takes an
optional `torch.Generator`, and reads quantization and conditions from the model's config.json."""

from __future__ import annotations

import itertools
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from engine.encoding import dequantize, quantize
from engine.generation import generate_fast
from engine.sampling import make_sampler
from engine.threads import task_threads

from engine.image_tasks import *  # noqa: E402,F401,F403  (the image tasks, re-exported)
from engine.image_tasks import __all__ as _image_all

MAX_FORECAST_STEPS = 5000  # cost caps: a request may not ask for more than this
MAX_TRAJECTORIES = 256

Progress = Callable[[int, int], None]


def _quantization(model) -> tuple[int, float, float]:
    q = getattr(model, "data_config", {}).get("quantization")
    if not q:
        raise ValueError("This model has no quantization settings in its config.json; it cannot forecast signals.")
    return int(q["levels"]), float(q["low"]), float(q["high"])


def condition_tensor(model, condition: int | None, batch: int, device) -> torch.Tensor | None:
    """Condition index -> one-hot (B, K), or None for an unconditional model."""
    K = model.config.cond_channels
    if K == 0:
        if condition is not None:
            raise ValueError("This model is unconditional; leave the condition empty.")
        return None
    if condition is None or isinstance(condition, bool) or not isinstance(condition, (int, np.integer)) or not 0 <= condition < K:
        names = getattr(model, "data_config", {}).get("conditions") or list(range(K))
        raise ValueError(f"Choose a condition index in 0..{K - 1} ({', '.join(map(str, names))}).")
    return F.one_hot(torch.full((batch,), int(condition), device=device), K).float()


def _device(model) -> torch.device:
    return next(model.parameters()).device


@task_threads("forecast")
@torch.no_grad()
def forecast(
    model,
    observed,
    horizon: int,
    num_trajectories: int = 20,
    condition: int | None = None,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
    progress: Progress | None = None,
) -> np.ndarray:
    """Sample `num_trajectories` continuations of a real-valued signal for `horizon` steps.

    observed: (T0,) real values (T0 may be 0: then it samples from the prior, primed with the level of
    0.0). temperature 0 is greedy. Returns (N, horizon) real values.
    """
    Q, low, high = _quantization(model)
    observed = np.asarray(observed, dtype=np.float64).reshape(-1) if observed is not None else np.zeros(0)
    if not np.all(np.isfinite(observed)):
        raise ValueError("The observed values contain NaN or infinity.")
    for name, value, cap in (("horizon", horizon, MAX_FORECAST_STEPS), ("num_trajectories", num_trajectories, MAX_TRAJECTORIES)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 1 <= value <= cap:
            raise ValueError(f"{name} must be a whole number from 1 to {cap}, got {value!r}.")
    if not isinstance(temperature, (int, float)) or not (temperature >= 0 and np.isfinite(temperature)):
        raise ValueError(f"temperature must be a number >= 0, got {temperature!r}.")
    device = _device(model)
    if observed.size == 0:
        observed = np.zeros(1)
    levels = quantize(torch.from_numpy(observed).float(), Q, low, high).to(device)
    prefix = levels[None, :].expand(num_trajectories, -1)
    cond = condition_tensor(model, condition, num_trajectories, device)
    sampler = make_sampler("greedy" if temperature == 0 else "temperature", temperature=temperature or 1.0, generator=generator)
    return _continue(model, prefix, cond, horizon, sampler, progress)


def _continue(model, prefix: torch.Tensor, cond: torch.Tensor | None, horizon: int, sampler, progress: Progress | None) -> np.ndarray:
    """Levels (B, T0) -> (B, horizon) real values sampled after them, one step at a time (the fast state)."""
    Q, low, high = _quantization(model)
    out = torch.empty(prefix.shape[0], horizon, dtype=torch.long, device=prefix.device)
    for i, step in enumerate(itertools.islice(generate_fast(model, prefix, sampler, cond), horizon)):
        out[:, i] = step.sample
        if progress is not None and ((i + 1) % 25 == 0 or i + 1 == horizon):
            progress(i + 1, horizon)
    return dequantize(out, Q, low, high).cpu().numpy()


MAX_ERROR_CURVES = 64


@task_threads("forecast")
@torch.no_grad()
def forecast_error_over_curves(model, n_observed: int, horizon: int, num_curves: int = 16,
                               progress: Progress | None = None) -> np.ndarray:
    """Mean |greedy forecast - truth| at each step ahead over the first `num_curves` test curves of the
    distribution the model was trained on (its config.json's data.train_params, test split), each curve
    observed for `n_observed` samples and forecast `horizon` steps, all curves in one batch.
    Returns (horizon,): the error on many curves, next to the one on the page's curve."""
    from engine.data.fourier import FourierParams, make_curves  # the Fourier data only when asked for

    Q, low, high = _quantization(model)
    train = dict(getattr(model, "data_config", {}).get("train_params") or {})
    if not train:
        raise ValueError("This model's config.json has no data.train_params: the curves it was trained on are unknown.")
    for name, value, lo, cap in (("n_observed", n_observed, 0, 100_000), ("horizon", horizon, 1, MAX_FORECAST_STEPS),
                                 ("num_curves", num_curves, 1, MAX_ERROR_CURVES)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not lo <= value <= cap:
            raise ValueError(f"{name} must be a whole number from {lo} to {cap}, got {value!r}.")
    known = set(FourierParams.__dataclass_fields__)
    params = FourierParams(**{**{k: v for k, v in train.items() if k in known},
                              "num_curves": int(num_curves), "length": int(n_observed + horizon)})
    values, conditions = make_curves(params, "test")
    device = _device(model)
    observed = values[:, :n_observed] if n_observed else torch.zeros(num_curves, 1)
    prefix = quantize(observed, Q, low, high).to(device)
    K = model.config.cond_channels
    cond = F.one_hot(conditions.to(device), K).float() if K else None
    forecasts = _continue(model, prefix, cond, horizon, make_sampler("greedy"), progress)
    return np.abs(forecasts - values[:, n_observed:].numpy()).mean(axis=0)


def summarize_trajectories(trajectories: np.ndarray) -> dict[str, np.ndarray]:
    """(N, H) -> mean, std, mean +/- 2 std bands per step."""
    mean = trajectories.mean(axis=0)
    std = trajectories.std(axis=0)
    return {"mean": mean, "std": std, "lower": mean - 2 * std, "upper": mean + 2 * std}


__all__ = ["MAX_FORECAST_STEPS", "MAX_TRAJECTORIES", "condition_tensor", "forecast", "summarize_trajectories", *_image_all]
