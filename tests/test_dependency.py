"""Dependency maps (engine/dependency.py) on the tiny model of every family (tests/families.py TINY):
zero on every pixel at and after the chosen one, non-zero before it, PixelCNN's blind spot where its
masks say and no blind spot for the Gated PixelCNN, WaveNet's 1-D receptive field, and clear refusals."""

import pytest
import torch

from engine.dependency import dependency_map, dependency_method, dependency_on_levels
from engine.images import conditions, encode_images
from engine.models.base import NaiveState
from families import TINY
from test_image_tasks import data_config

FAMILIES = sorted(TINY)
Q, K, H, W = 2, 3, 6, 7


def tiny(family: str):
    model = TINY[family](Q, K, H, W)
    model.data_config = data_config(Q, K, H, W)
    return model


def image(seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(H, W, generator=g) < 0.5).to(torch.uint8) * 255


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("row,col", [(3, 3), (5, 6), (2, 0)])
def test_zero_at_and_after_the_pixel_and_not_before(family, row, col):
    model = tiny(family)
    m = dependency_map(model, image(), row, col, digit=1)
    assert m.shape == (H, W) and m.dtype == torch.float32 and (m >= 0).all()
    flat, t = m.reshape(-1), row * W + col
    assert (flat[t:] == 0).all(), f"{family} reads pixel {int(flat[t:].nonzero()[0]) + t} at or after {t}"
    assert (flat[:t] > 0).any(), f"{family}'s prediction of pixel {t} reads nothing before it"


@pytest.mark.parametrize("family", FAMILIES)
def test_the_first_pixel_depends_on_no_pixel(family):
    assert (dependency_map(tiny(family), image(), 0, 0, digit=0) == 0).all()


@pytest.mark.parametrize("family", [f for f in FAMILIES if not TINY[f](Q, K, H, W).soft_inputs])
def test_perturbation_through_the_state_equals_perturbation_through_log_probs(family):
    """The perturbation reads row t from the model's own state; the naive state (log_probs itself) gives the same map."""
    model = tiny(family)
    levels = encode_images(model, image(1))[0]
    cond = conditions(model, torch.tensor([2]))
    for t in (5, 17, H * W - 1):
        fast = dependency_on_levels(model, levels, t, cond)
        naive = dependency_on_levels(model, levels, t, cond, start=lambda p, c: NaiveState(model, p, c))
        torch.testing.assert_close(fast, naive, rtol=1e-4, atol=1e-6)


def test_pixelcnn_blind_spot_and_gated_pixelcnn_full_context():
    """Pixel (4, 3): one row up and two columns right, (3, 5), lies inside PixelCNN's reach (3 rows and columns
    around) yet is never read (the blind spot); the Gated PixelCNN reads it."""
    row, col = 4, 3
    pixelcnn = tiny("pixelcnn")
    m = dependency_map(pixelcnn, image(), row, col, digit=0)
    field = pixelcnn.dependency_map(row, col)  # the receptive field its masks document
    field[row, col] = False  # the pixel itself: the mask-A kernel skips it
    assert pixelcnn.reach >= 2
    assert m[3, 5] == 0 and not field[3, 5]
    assert m[3, 4] > 0 and m[4, 2] > 0  # up-right by one and left: read
    assert (m[~field] == 0).all()  # nothing outside the documented field
    gated = dependency_map(tiny("gated_pixelcnn"), image(), row, col, digit=0)
    assert gated[3, 5] > 0 and gated[3, 6] > 0  # the whole row above: no blind spot


def test_wavenet_reads_its_1d_receptive_field_wrapping_around_rows():
    model = tiny("wavenet")
    assert dependency_method(model) == "gradient"
    R = model.receptive_field  # the start token included
    row, col = 3, 1  # t = 22: its field reaches back across the row boundary into row 2
    t = row * W + col
    m = dependency_map(model, image(), row, col, digit=0).reshape(-1)
    read = set(m.nonzero()[:, 0].tolist())
    assert read <= set(range(t - R, t)) and t - 1 in read
    assert min(read) < row * W  # the field wraps into the row above, to its right end
    assert m[t - R - 1] == 0


def test_the_method_follows_the_declared_capability_not_the_family():
    for family in FAMILIES:
        model = TINY[family](Q, K, H, W)
        assert dependency_method(model) == ("gradient" if model.soft_inputs else "perturbation")


@pytest.mark.parametrize("row,col,message", [(6, 0, "row must be a whole number from 0 to 5"),
                                             (0, 7, "col must be a whole number from 0 to 6"),
                                             (-1, 0, "row must"), (True, 0, "row must"), (1.5, 0, "row must")])
def test_a_bad_pixel_index_is_a_clear_error(row, col, message):
    with pytest.raises(ValueError, match=message):
        dependency_map(tiny("gated_pixelcnn"), image(), row, col, digit=0)


def test_a_missing_or_needless_digit_is_a_clear_error():
    with pytest.raises(ValueError, match="conditioned on the digit"):
        dependency_map(tiny("made"), image(), 2, 2)
    with pytest.raises(ValueError, match="from 0 to 2"):
        dependency_map(tiny("made"), image(), 2, 2, digit=3)
    model = TINY["pixelcnn"](Q, 0, H, W)
    model.data_config = data_config(Q, 0, H, W)
    with pytest.raises(ValueError, match="unconditional"):
        dependency_map(model, image(), 2, 2, digit=1)
    assert (dependency_map(model, image(), 2, 2).reshape(-1)[:16] > 0).any()
