import pytest
import torch

from engine.encoding import (dequantize, image_to_sequence, images_to_levels, levels_to_images, one_hot,
                             quantize, sequence_to_image)


@pytest.mark.parametrize("Q", [2, 8, 127, 256])
def test_quantize_round_trip(Q):
    low, high = -1.6, 1.6
    levels = torch.arange(Q)
    assert torch.equal(quantize(dequantize(levels, Q, low, high), Q, low, high), levels)
    x = torch.linspace(low, high, 1001)
    err = (dequantize(quantize(x, Q, low, high), Q, low, high) - x).abs().max()
    assert err <= (high - low) / (Q - 1) / 2 + 1e-6


def test_quantize_clips_and_rejects_nan():
    assert quantize(torch.tensor([-10.0, 10.0]), 5, -1, 1).tolist() == [0, 4]
    with pytest.raises(ValueError, match="NaN"):
        quantize(torch.tensor([float("nan")]), 5, -1, 1)
    with pytest.raises(ValueError, match="high > low"):
        quantize(torch.tensor([0.0]), 5, 1, 1)


def test_one_hot_shape():
    x = one_hot(torch.tensor([[0, 2, 1]]), 3)
    assert x.shape == (1, 3, 3) and torch.equal(x.argmax(1), torch.tensor([[0, 2, 1]]))


def test_scan_order_round_trip_and_image_levels():
    images = torch.randint(0, 256, (3, 28, 28), dtype=torch.uint8)
    seq = image_to_sequence(images)
    assert seq.shape == (3, 784) and seq[1, 28 * 5 + 7] == images[1, 5, 7]
    assert torch.equal(sequence_to_image(seq), images)
    assert torch.equal(images_to_levels(images, 2), (images > 127).long())
    assert torch.equal(images_to_levels(images, 256), images.long())
    assert torch.equal(levels_to_images(images_to_levels(images, 256), 256), images)
    with pytest.raises(ValueError, match="scan order"):
        image_to_sequence(images, "zigzag")
