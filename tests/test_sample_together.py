"""engine.compare.iter_sample_together: several models sampling round robin give each the samples it gives
alone with the same seed, interleaved row by row, with each model's own seconds kept apart."""

import pytest
import torch

from engine.compare import iter_sample_together
from engine.image_tasks import sample_images
from families import TINY
from test_image_tasks import data_config

H, W = 4, 5


def tiny(family, K=3):
    model = TINY[family](2, K, H, W)
    model.data_config = data_config(2, K, H, W)
    return model


def test_round_robin_gives_each_model_its_own_samples():
    models = {"a": tiny("pixelcnn"), "b": tiny("made"), "c": tiny("wavenet", K=0)}
    digits = {"a": 1, "b": 2, "c": None}
    steps = list(iter_sample_together(models, digits, n=3, temperature=1.0, seed=7))
    order = [name for name, *_ in steps]
    assert order[:6] == ["a", "b", "c", "a", "b", "c"]  # one image row each, in turn
    for name, model in models.items():
        mine = [(done, images, seconds) for n, done, images, seconds in steps if n == name]
        assert [done for done, _, _ in mine] == [W * (r + 1) for r in range(H)]
        alone = sample_images(model, [digits[name]], 3, 1.0, generator=torch.Generator().manual_seed(7))
        assert torch.equal(mine[-1][1], alone)
        seconds = [s for _, _, s in mine]
        assert seconds == sorted(seconds) and seconds[0] > 0


def test_a_bad_argument_is_a_clear_error_in_the_first_round():
    with pytest.raises(ValueError, match="unconditional"):
        list(iter_sample_together({"a": tiny("made"), "c": tiny("wavenet", K=0)}, {"a": 1, "c": 2}))
