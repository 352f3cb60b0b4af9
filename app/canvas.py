"""The drawing canvas of the MNIST pages: its look (st_canvas keyword arguments, the backdrop that shows
the hidden region and MNIST's box) and what it sends back, read as a 28x28 digit or a painted mask.
No widgets here; engine.drawing does the MNIST-like framing."""

from __future__ import annotations

import io

import numpy as np

from engine.drawing import BOX, COVERED, SIZE, as_drawn, frame_like_mnist

CANVAS_SIZE = 280  # 10 canvas pixels per MNIST pixel
CANVAS_STROKE = 16  # chosen on validation digits redrawn with the pen (bench/strokes.py): the Q=256 models read thinner strokes better
CANVAS_COVERED = COVERED
HOLE_RGB = (120, 30, 40)  # the hidden region on the canvas, the colour plots.HIDDEN gives it in the figures
GUIDE_RGB = (70, 70, 70)  # MNIST's 20x20 box


def canvas_style() -> dict:
    """st_canvas keyword arguments shared by the MNIST pages: white ink on black, a thick pen, large."""
    return dict(stroke_width=CANVAS_STROKE, stroke_color="#FFFFFF", background_color="#000000",
                height=CANVAS_SIZE, width=CANVAS_SIZE, drawing_mode="freedraw", return_image_data=True)


def hole_backdrop(known: np.ndarray):
    """A PIL image behind the drawing canvas: black, the hidden pixels (known False) in dark red, and a thin
    outline of MNIST's centred 20x20 box, so a partial digit is drawn where it stays."""
    from PIL import Image, ImageDraw

    rgb = np.zeros((*known.shape, 3), dtype=np.uint8)
    rgb[~np.asarray(known, dtype=bool)] = HOLE_RGB
    scale = CANVAS_SIZE // known.shape[0]
    img = Image.fromarray(rgb).resize((CANVAS_SIZE, CANVAS_SIZE), Image.Resampling.NEAREST)
    margin = (SIZE - BOX) // 2 * scale
    ImageDraw.Draw(img).rectangle([margin, margin, CANVAS_SIZE - margin - 1, CANVAS_SIZE - margin - 1], outline=GUIDE_RGB, width=1)
    return img


def hole_canvas_style(known: np.ndarray) -> dict:
    """st_canvas keyword arguments for drawing a digit over the hole backdrop (the backdrop is not sent
    back: the canvas returns the strokes alone on transparent)."""
    return {**canvas_style(), "background_color": "", "background_image": hole_backdrop(known)}


def canvas_rgba(result) -> np.ndarray | None:
    """What a canvas (st_canvas result with return_image_data=True) holds as (H, W, 4) uint8 RGBA, whatever
    PNG mode it arrived in (gray, palette, ...); None before it sends anything. `result.image_data` alone
    would hand over palette indices as if they were gray levels."""
    from PIL import Image, UnidentifiedImageError

    raw = result.image_bytes
    if raw is None:
        return None
    try:
        with Image.open(io.BytesIO(raw)) as img:
            return np.asarray(img.convert("RGBA"))
    except (UnidentifiedImageError, OSError):
        raise ValueError("The canvas sent an image that cannot be read; clear it and draw again.") from None


def canvas_to_digit(rgba, fit: bool = True) -> np.ndarray | None:
    """A canvas image (H, W, 4) RGBA or (H, W) gray -> uint8 (28, 28), 0 = background, 255 = ink; None when
    nothing is drawn; ValueError (CANVAS_COVERED) when ink covers the canvas. fit=True frames it like
    MNIST (engine.drawing.frame_like_mnist); fit=False keeps every stroke where it was drawn (as_drawn)."""
    if rgba is None:
        return None
    return frame_like_mnist(rgba) if fit else as_drawn(rgba)


def paint_style(image: np.ndarray) -> dict:
    """st_canvas keyword arguments for painting over a digit (uint8 (H, W)) shown large behind the canvas."""
    from PIL import Image

    backdrop = Image.fromarray(np.asarray(image, dtype=np.uint8)).resize((CANVAS_SIZE, CANVAS_SIZE), Image.Resampling.NEAREST)
    return dict(stroke_width=CANVAS_STROKE, stroke_color="rgba(220, 40, 60, 0.85)", background_image=backdrop.convert("RGB"),
                height=CANVAS_SIZE, width=CANVAS_SIZE, drawing_mode="freedraw", return_image_data=True)


def painted_mask(rgba, size: int = SIZE, cover: float = 0.3) -> np.ndarray | None:
    """Paint strokes (H, W, 4) RGBA on a transparent canvas -> known_mask bool (size, size), False where
    paint covers at least `cover` of a pixel's area; None when nothing is painted (or rgba is None)."""
    from PIL import Image

    if rgba is None:
        return None
    a = np.asarray(rgba)
    if a.ndim != 3 or a.shape[2] != 4:
        raise ValueError(f"A painted canvas must be (H, W, 4) RGBA, got shape {a.shape}.")
    alpha = np.asarray(Image.fromarray(a[..., 3]).resize((size, size), Image.Resampling.BOX), dtype=np.float32) / 255.0
    unknown = alpha >= cover
    return ~unknown if unknown.any() else None
