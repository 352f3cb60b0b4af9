"""Drawings -> MNIST-like digits, the way MNIST's digits were made (LeCun, Bottou, Bengio and Haffner 1998,
"Gradient-based learning applied to document recognition"): each digit was fitted into a 20x20 box,
keeping its aspect ratio, with anti-aliasing that leaves grey edges, then placed in a 28x28 image with
its centre of mass at the centre. A drawing that must keep its place (a partial digit whose lower rows are
hidden) is only downsampled, never moved, so no known pixel lands in the hole."""

from __future__ import annotations

import numpy as np

SIZE, BOX = 28, 20  # MNIST's image and the box its digits were fitted into
MIN_INK = 0.02  # of full ink: fainter pixels are not ink
MAX_COVER = 0.9  # a digit never covers more of its canvas
COVERED = ("The canvas is completely covered, so there is no digit to read: draw a digit in white on the "
           "black canvas (the toolbar's bin clears it).")


def ink(image) -> np.ndarray:
    """A drawing (H, W, 4) RGBA, (H, W, 3) RGB or (H, W) gray, white ink -> ink float32 (H, W), 0..255,
    composited over black (white ink on a black or on a transparent background both read as ink)."""
    a = np.asarray(image)
    if a.ndim == 3 and a.shape[2] in (3, 4):
        gray = a[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        if a.shape[2] == 4:
            gray = gray * (a[..., 3].astype(np.float32) / 255.0)
        return gray
    if a.ndim == 2:
        return a.astype(np.float32)
    raise ValueError(f"A drawing must be (H, W, 4) RGBA, (H, W, 3) RGB or (H, W) gray, got shape {a.shape}.")


def _resize(gray: np.ndarray, h: int, w: int) -> np.ndarray:
    """Area-averaging resize (anti-aliased: each output pixel is the mean ink it covers)."""
    from PIL import Image

    img = Image.fromarray(gray.clip(0, 255).astype(np.float32), mode="F")
    return np.asarray(img.resize((w, h), Image.Resampling.BOX), dtype=np.float32)


def _checked(gray: np.ndarray) -> bool:
    """False when nothing is drawn; ValueError (COVERED) when ink covers the canvas."""
    if gray.size == 0 or gray.max() < MIN_INK * 255:
        return False
    if (gray >= MIN_INK * 255).mean() > MAX_COVER:
        raise ValueError(COVERED)
    return True


def as_drawn(image, size: int = SIZE) -> np.ndarray | None:
    """A drawing -> uint8 (size, size), 0 = background, 255 = ink, each pixel the mean ink of the part of
    the drawing it covers: nothing moves, so a region hidden on the drawing is the same region here.
    None when nothing is drawn; ValueError when ink covers the drawing."""
    gray = ink(image)
    if not _checked(gray):
        return None
    return _resize(gray, size, size).round().clip(0, 255).astype(np.uint8)


def frame_like_mnist(image, size: int = SIZE, box: int = BOX) -> np.ndarray | None:
    """A drawing -> uint8 (size, size) framed like MNIST: the ink's bounding box scaled (anti-aliased) to
    fit box x box, keeping its aspect ratio, then placed so its centre of mass sits in the middle.
    None when nothing is drawn; ValueError when ink covers the drawing."""
    gray = ink(image)
    if not _checked(gray):
        return None
    rows, cols = np.nonzero(gray >= MIN_INK * 255)
    crop = gray[rows.min(): rows.max() + 1, cols.min(): cols.max() + 1]
    box = max(1, min(box, size))
    scale = box / max(crop.shape)
    h, w = max(1, round(crop.shape[0] * scale)), max(1, round(crop.shape[1] * scale))
    small = _resize(crop, h, w)
    total = small.sum()
    cy, cx = ((np.arange(h) @ small.sum(1)) / total, (np.arange(w) @ small.sum(0)) / total) if total > 0 else (h / 2, w / 2)
    top = int(np.clip(round((size - 1) / 2 - cy), 0, size - h))
    left = int(np.clip(round((size - 1) / 2 - cx), 0, size - w))
    out = np.zeros((size, size), dtype=np.float32)
    out[top: top + h, left: left + w] = small
    return out.round().clip(0, 255).astype(np.uint8)
