"""What every image task shares (engine/image_tasks.py, engine/completion.py): the model's image settings
from its config.json, input checks with clear messages, images <-> the model's levels in its scan order,
and teacher-forced scoring through the model interface (`model.log_probs`, engine/models/base.py).

Images come in as a dataset or a canvas gives them: (B, H, W) or (H, W), 0 = background, 255 = ink."""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from engine.encoding import image_to_sequence, images_to_levels, levels_to_images, sequence_to_image

MAX_IMAGES = 100  # images per call (cost cap for pages shared by many sessions)
MAX_PARTICLE_ROWS = 1024  # completions x particles per call
# sequences per full forward: bounds memory (~3 MB of activations per row for R=704) and, on a CPU, keeps
# them in cache: 10-row chunks score 100 rows 2x faster than one 100-row forward on this project's VM, and
# 5-row chunks one digit's 10 rows (a live posterior) 7 % faster than 10 (84.6 vs 90.6 ms, 1 thread; 2 and 4 slower)
FORWARD_ROWS = {"cpu": 5, "cuda": 200}

Progress = Callable[[int, int], None]


def image_config(model) -> dict:
    dc = getattr(model, "data_config", None) or {}
    if dc.get("task") != "mnist" or "scan_order" not in dc:
        raise ValueError(f"This model was not trained on images (its config.json says task {dc.get('task')!r}); pick an MNIST model.")
    Q = model.config.quantization_levels
    levels = (dc.get("quantization") or {}).get("levels", Q)
    if levels != Q:
        raise ValueError(f"config.json says {levels} quantization levels but the model has {Q}.")
    H, W = int(dc.get("height", 28)), int(dc.get("width", 28))
    if model.sequence_length not in (None, H * W):
        raise ValueError(f"This model reads sequences of {model.sequence_length} values, but config.json says {H}x{W} images.")
    return {"Q": Q, "threshold": int(dc.get("threshold", 127)), "scan_order": dc["scan_order"], "H": H, "W": W,
            "K": model.config.cond_channels}


def model_device(model) -> torch.device:
    return next(model.parameters()).device


def check_count(name: str, value, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= high:
        raise ValueError(f"{name} must be a whole number from {low} to {high}, got {value!r}.")
    return int(value)


def check_temperature(temperature) -> float:
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not (temperature >= 0 and math.isfinite(temperature)):
        raise ValueError(f"temperature must be a number >= 0 (0 = most likely pixel), got {temperature!r}.")
    return float(temperature)


def check_generator(generator, device: torch.device) -> None:
    if generator is not None and torch.device(generator.device).type != device.type:
        raise ValueError(f"The random generator lives on {generator.device} but the model on {device}; "
                         f"make it with torch.Generator(device={str(device)!r}).")


def as_tensor(x, what: str) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu()
    try:
        arr = np.asarray(x)
    except Exception:
        raise ValueError(f"{what} must be an array or tensor.") from None
    if arr.dtype == object or arr.dtype.kind in "USVc":
        raise ValueError(f"{what} must hold numbers, got dtype {arr.dtype}.")
    return torch.from_numpy(arr.copy())


def check_images(images, H: int, W: int) -> torch.Tensor:
    """(B, H, W) or (H, W) pixel values 0..255 -> uint8 (B, H, W)."""
    x = as_tensor(images, "images")
    if x.dim() == 2:
        x = x[None]
    if x.dim() != 3 or tuple(x.shape[1:]) != (H, W):
        raise ValueError(f"images must have shape ({H}, {W}) or (B, {H}, {W}), got {tuple(x.shape)}.")
    if x.shape[0] < 1 or x.shape[0] > MAX_IMAGES:
        raise ValueError(f"Pass 1 to {MAX_IMAGES} images per call, got {x.shape[0]}.")
    if x.dtype == torch.bool or x.is_complex():
        raise ValueError(f"images must hold pixel values 0..255 (uint8 or numbers), got dtype {x.dtype}.")
    if x.is_floating_point():
        if torch.isnan(x).any():
            raise ValueError("images contain NaN values.")
        x = x.round()
    else:
        x = x.long()  # compare in a wide type: 255 does not fit int8, and an int8 comparison would wrap
    if x.min() < 0 or x.max() > 255:
        raise ValueError(f"Pixel values must lie in 0..255, got {x.min().item()}..{x.max().item()}.")
    return x.to(torch.uint8)


def encode_images(model, images) -> torch.Tensor:
    """Pixels (B, H, W) or (H, W) in 0..255 -> the model's levels (B, H*W) long, in its scan order."""
    c = image_config(model)
    x = check_images(images, c["H"], c["W"])
    return image_to_sequence(images_to_levels(x, c["Q"], c["threshold"]), c["scan_order"])


def decode_levels(model, levels: torch.Tensor) -> torch.Tensor:
    """Levels (B, H*W) in scan order -> uint8 images (B, H, W) on the CPU, for display."""
    c = image_config(model)
    return levels_to_images(sequence_to_image(levels.cpu(), c["H"], c["W"], c["scan_order"]), c["Q"])


def _in_chunks(method, levels: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
    """method(levels, cond) on FORWARD_ROWS sequences at a time, the results concatenated along rows."""
    rows = FORWARD_ROWS.get(levels.device.type, 10)
    chunks = [method(levels[s:s + rows], None if cond is None else cond[s:s + rows]) for s in range(0, levels.shape[0], rows)]
    return chunks[0] if len(chunks) == 1 else torch.cat(chunks)


@torch.no_grad()
def forward_rows(model, levels: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
    """Teacher-forced log p(x_t | x_<t, y) (M, N, Q) of level sequences (M, N) (`model.log_probs`),
    FORWARD_ROWS sequences at a time."""
    return _in_chunks(model.log_probs, levels, cond)


def _class_rows(model, levels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Level sequences (B, N) -> each once per class, rows b-major (row = b * K + k), and their one-hot conditions."""
    device = model_device(model)
    levels = levels.to(device).long()
    K = model.config.cond_channels
    rows = levels.repeat_interleave(max(K, 1), dim=0)
    cond = torch.eye(K, device=device, dtype=next(model.parameters()).dtype).repeat(levels.shape[0], 1) if K else None
    return rows, cond


@torch.no_grad()
def observed_scores(model, levels: torch.Tensor) -> torch.Tensor:
    """log p(x_t | x_<t, y=k) (B, K, N) of level sequences (B, N) under every class, through
    `model.log_likelihood` (the observed values only: for PixelCNN++ one bin of the mixture per pixel, not
    all Q), FORWARD_ROWS rows at a time. An unconditional model counts as K=1."""
    rows, cond = _class_rows(model, levels)
    ll = _in_chunks(model.log_likelihood, rows, cond).float()
    return ll.view(levels.shape[0], max(model.config.cond_channels, 1), -1)


@torch.no_grad()
def score_levels(model, levels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Teacher-forced scores of level sequences (B, N) under every class, all B*K rows batched together:
    -> log p(x_t | x_<t, y=k) (B, K, N) and the most likely level at each pixel (B, K, N).
    An unconditional model counts as K=1."""
    B, N = levels.shape
    K = model.config.cond_channels
    rows, cond = _class_rows(model, levels)
    logp = forward_rows(model, rows, cond).float()  # (B*K, N, Q)
    ll = logp.gather(-1, rows[:, :, None]).squeeze(-1)
    return ll.view(B, max(K, 1), N), logp.argmax(-1).view(B, max(K, 1), N)


def check_digits(model, digits) -> list[int | None]:
    K = model.config.cond_channels
    if K == 0:
        if digits not in (None, [None]):
            raise ValueError("This model is unconditional; pass digits=None.")
        return [None]
    if isinstance(digits, (int, np.integer)) and not isinstance(digits, bool):
        digits = [digits]
    if digits is None or isinstance(digits, (str, bytes)) or len(digits) == 0:
        raise ValueError(f"Choose at least one digit from 0 to {K - 1}.")
    out = []
    for d in digits:
        if isinstance(d, bool) or not isinstance(d, (int, np.integer)) or not 0 <= d < K:
            raise ValueError(f"Each digit must be a whole number from 0 to {K - 1}, got {d!r}.")
        out.append(int(d))
    return out


def conditions(model, labels: torch.Tensor) -> torch.Tensor | None:
    K = model.config.cond_channels
    return F.one_hot(labels, K).to(next(model.parameters()).dtype) if K else None

def check_mask(known_mask, H: int, W: int) -> torch.Tensor:
    m = as_tensor(known_mask, "known_mask")
    if tuple(m.shape) != (H, W):
        raise ValueError(f"known_mask must have shape ({H}, {W}), got {tuple(m.shape)}.")
    if m.dtype != torch.bool:
        if m.is_floating_point() or m.is_complex() or not ((m == 0) | (m == 1)).all():
            raise ValueError(f"known_mask must be booleans (True = known pixel), got dtype {m.dtype}.")
        m = m.bool()
    return m
