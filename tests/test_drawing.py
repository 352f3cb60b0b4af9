"""engine.drawing: a drawing framed like MNIST (20x20 box, centre of mass in the middle) or kept where it
was drawn, and the checks both share."""

import numpy as np
import pytest

from engine.drawing import COVERED, as_drawn, frame_like_mnist


def stroke(top: int, bottom: int, left: int, right: int, size: int = 280) -> np.ndarray:
    img = np.zeros((size, size), np.uint8)
    img[top:bottom, left:right] = 255
    return img


def test_frame_like_mnist_fits_the_box_and_centres_the_mass():
    digit = frame_like_mnist(stroke(20, 120, 200, 220))  # a short bar in the top right corner
    rows, cols = np.nonzero(digit > 127)
    assert rows.max() - rows.min() + 1 == 20 and cols.max() - cols.min() + 1 == 4  # 100 px tall -> 20, aspect kept
    mass = digit.astype(float)
    cy, cx = (np.arange(28) @ mass.sum(1)) / mass.sum(), (np.arange(28) @ mass.sum(0)) / mass.sum()
    assert abs(cy - 13.5) <= 0.5 and abs(cx - 13.5) <= 0.5
    from PIL import Image, ImageDraw

    slanted = Image.new("L", (280, 280), 0)
    ImageDraw.Draw(slanted).line([(60, 40), (200, 240)], fill=255, width=20)
    edges = frame_like_mnist(np.asarray(slanted))
    assert ((edges > 20) & (edges < 235)).sum() > 10  # anti-aliased: grey edges, as in MNIST


def test_as_drawn_keeps_every_pixel_where_it_was_drawn():
    digit = as_drawn(stroke(0, 130, 100, 120))  # ink in canvas rows 0..129 = MNIST rows 0..12, columns 10..11
    assert digit[13:].max() == 0
    assert digit[:13, 10:12].min() == 255 and digit[:, :10].max() == 0 and digit[:, 12:].max() == 0


def test_nothing_drawn_and_covered():
    assert frame_like_mnist(np.zeros((280, 280), np.uint8)) is None and as_drawn(np.zeros((10, 10, 4), np.uint8)) is None
    for f in (frame_like_mnist, as_drawn):
        with pytest.raises(ValueError, match="completely covered") as e:
            f(np.full((50, 50), 255, np.uint8))
        assert str(e.value) == COVERED
    with pytest.raises(ValueError, match="RGBA"):
        as_drawn(np.zeros((4, 4, 2), np.uint8))
