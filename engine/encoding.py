"""Quantization of real signals and images to Q levels, one-hot encoding and the image <-> sequence
scan order; everything a model's config.json `data` section describes."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def quantize(x: torch.Tensor, levels: int, low: float, high: float) -> torch.Tensor:
    """Mid-tread quantization of real values in [low, high] to bins 0..Q-1 (clipped): (...) -> (...) long."""
    if not high > low:
        raise ValueError(f"quantize needs high > low, got [{low}, {high}].")
    x = torch.as_tensor(x, dtype=torch.float32)
    if torch.isnan(x).any():
        raise ValueError("Cannot quantize NaN values.")
    unit = ((x - low) / (high - low)).clamp(0.0, 1.0)
    return torch.round(unit * (levels - 1)).long()


def dequantize(q: torch.Tensor, levels: int, low: float, high: float) -> torch.Tensor:
    """Bins 0..Q-1 -> bin centres in [low, high]: (...) long -> (...) float."""
    return low + q.float() / (levels - 1) * (high - low)


def one_hot(q: torch.Tensor, levels: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(B, T) long -> (B, Q, T) float."""
    return F.one_hot(q, levels).to(dtype).transpose(1, 2)


def binarize(images: torch.Tensor, threshold: int = 127) -> torch.Tensor:
    """uint8 images -> {0, 1} long: ink where pixel > threshold."""
    return (images > threshold).long()


def images_to_levels(images: torch.Tensor, levels: int, threshold: int = 127) -> torch.Tensor:
    """uint8 images (..., H, W) in 0..255 -> quantized levels: Q=2 binarizes, Q=256 keeps the values,
    other Q map 0..255 linearly to 0..Q-1."""
    images = images.long()
    if levels == 2:
        return binarize(images, threshold)
    if levels == 256:
        return images
    return torch.round(images.float() * (levels - 1) / 255.0).long()


def levels_to_images(levels_: torch.Tensor, levels: int) -> torch.Tensor:
    """Quantized levels -> uint8 images in 0..255 (for display)."""
    return torch.round(levels_.float() * 255.0 / (levels - 1)).clamp(0, 255).to(torch.uint8)


SCAN_ORDERS = ("raster",)


def image_to_sequence(images: torch.Tensor, scan_order: str = "raster") -> torch.Tensor:
    """(B, H, W) -> (B, H*W) in the given scan order (raster: row by row, left to right)."""
    if scan_order != "raster":
        raise ValueError(f"Unknown scan order {scan_order!r}; known: {SCAN_ORDERS}.")
    return images.reshape(images.shape[0], -1)


def sequence_to_image(seq: torch.Tensor, height: int = 28, width: int = 28, scan_order: str = "raster") -> torch.Tensor:
    """(B, H*W) -> (B, H, W), the inverse of image_to_sequence."""
    if scan_order != "raster":
        raise ValueError(f"Unknown scan order {scan_order!r}; known: {SCAN_ORDERS}.")
    return seq.reshape(seq.shape[0], height, width)
