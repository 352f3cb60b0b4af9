"""MADE: any order, order-agnostic training, and exact completion (known pixels first, engine.completion)
checked against brute-force conditioning of the model's joint distribution in that order."""

import itertools

import pytest
import torch
import torch.nn.functional as F

from engine.completion import complete
from engine.models.made import MADE, MADEConfig, known_first_order
from tests.families import tiny_made

H, W = 2, 3


def joint_log_probs(model, images: torch.Tensor, order: torch.Tensor, k: int) -> torch.Tensor:
    """log p(x | y=k) of images (M, N) (by position) under the model read in `order` -> (M,)."""
    cond = F.one_hot(torch.full((len(images),), k), model.config.cond_channels).double()
    with torch.no_grad():
        return model.log_probs(images, cond, order=order).gather(-1, images[:, :, None]).sum(dim=(1, 2))


def with_image_config(model, K: int):
    """What load_pretrained attaches: the image settings the tasks read."""
    model.data_config = {"task": "mnist", "quantization": {"levels": model.config.quantization_levels}, "threshold": 127,
                         "scan_order": "raster", "height": H, "width": W, "start_value": 0,
                         "conditions": [f"digit {k}" for k in range(K)]}
    return model


def test_orders_are_checked():
    model = tiny_made(2, 0, H, W)
    with pytest.raises(ValueError, match="permutation"):
        model.log_probs(torch.zeros(1, 6, dtype=torch.long), None, order=torch.tensor([0, 1, 2, 3, 4, 4]))
    with pytest.raises(ValueError, match="permutation"):
        model.start(torch.zeros(1, 0, dtype=torch.long), None, order=[0, 1, 2])
    with pytest.raises(ValueError, match="hidden_sizes"):
        MADEConfig(hidden_sizes=[])


def test_rows_stay_by_position_whatever_the_order():
    """Row p of log_probs(order=...) is pixel p's conditional: the first pixel in the order reads nothing,
    so its row does not move when every other pixel changes."""
    model = tiny_made(3, 0, H, W).double()
    order = torch.tensor([4, 0, 5, 1, 3, 2])
    x = torch.randint(0, 3, (5, 6), generator=torch.Generator().manual_seed(0))
    y = x.clone()
    y[:, [0, 1, 2, 3, 5]] = (y[:, [0, 1, 2, 3, 5]] + 1) % 3
    a, b = model.log_probs(x, None, order=order), model.log_probs(y, None, order=order)
    torch.testing.assert_close(a[:, 4], b[:, 4])
    assert not torch.allclose(a[:, 2], b[:, 2])  # the last in the order reads the changed pixels


def test_training_draws_orders_but_scores_every_pixel():
    model = MADE(MADEConfig(quantization_levels=2, cond_channels=0, height=H, width=W, hidden_sizes=[8], order_agnostic=1.0))
    x = torch.randint(0, 2, (8, 6))
    model.train()
    train_rows = model.log_probs(x, None)
    model.eval()
    assert train_rows.shape == (8, 6, 2)
    torch.testing.assert_close(train_rows.exp().sum(-1), torch.ones(8, 6))
    assert not torch.allclose(train_rows, model.log_probs(x, None)), "train mode read another order than raster"
    model.config.order_agnostic = 0.0
    model.train()
    torch.testing.assert_close(model.log_probs(x, None), model.eval().log_probs(x, None))


def test_known_first_order():
    known = torch.tensor([False, True, False, True, True, False])
    assert known_first_order(known).tolist() == [1, 3, 4, 0, 2, 5]


def hole_completions(image: torch.Tensor, known: torch.Tensor, Q: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Every image that agrees with `image` on the known pixels -> (images (Q^h, N), the hole positions)."""
    hole = (~known).nonzero().view(-1)
    fills = torch.tensor(list(itertools.product(range(Q), repeat=len(hole))))
    candidates = image.repeat(len(fills), 1)
    candidates[:, hole] = fills
    return candidates, hole


def test_exact_completion_equals_brute_force_conditioning():
    """The state after the known pixels gives each completion of the hole the probability that
    enumerating the joint (known pixels first) and normalizing gives it; complete()'s draws follow it."""
    Q, K, k = 3, 2, 1
    model = with_image_config(tiny_made(Q, K, H, W).double(), K)
    image = torch.tensor([2, 0, 1, 1, 2, 0])
    known = torch.tensor([True, False, True, False, True, False])
    order = known_first_order(known)
    candidates, hole = hole_completions(image, known, Q)
    brute = torch.softmax(joint_log_probs(model, candidates, order, k), dim=0)  # p(hole | known, y) by enumeration
    state = model.start(image[order[:3]][None].expand(len(candidates), -1), F.one_hot(torch.full((len(candidates),), k), K).double(),
                        order=order)
    logp = torch.zeros(len(candidates), dtype=torch.double)
    for t in range(3, 6):
        value = candidates[:, order[t]]
        logp += state.log_probs.gather(1, value[:, None]).squeeze(1)
        state.step(value)
    torch.testing.assert_close(logp.exp(), brute)
    # the draws of engine.completion.complete follow it (a fixed seed: the test is deterministic)
    g = torch.Generator().manual_seed(0)
    pixels = (image * 127).to(torch.uint8).view(H, W)  # levels 0, 1, 2 -> 0, 127, 254: round(pixel * 2 / 255) gives them back
    draws = torch.cat([complete(model, pixels, known.view(H, W), digit=k, n=100, generator=g) for _ in range(40)]).view(4000, -1)
    levels = torch.round(draws.double() * (Q - 1) / 255).long()
    assert torch.equal(levels[:, known], image[known].expand(4000, -1))
    index = (levels[:, hole] * torch.tensor([Q * Q, Q, 1])).sum(dim=1)
    freq = torch.bincount(index, minlength=len(candidates)).double() / 4000
    assert (freq - brute).abs().max() < 0.03


def test_exact_completion_draws_the_digit_from_all_known_pixels():
    Q, K = 2, 3
    model = with_image_config(tiny_made(Q, K, H, W).double(), K)
    image = torch.tensor([1, 0, 1, 1, 0, 0])
    known = torch.tensor([True, True, False, True, False, True])
    order = known_first_order(known)
    candidates, _ = hole_completions(image, known, Q)
    # p(known | y) from the whole joint, summing out the hole, for every class
    brute = torch.softmax(torch.stack([torch.logsumexp(joint_log_probs(model, candidates, order, k), dim=0) for k in range(K)]), dim=0)
    g = torch.Generator().manual_seed(1)
    pixels = (image * 255).to(torch.uint8).view(H, W)
    digits = torch.cat([complete(model, pixels, known.view(H, W), None, n=100, generator=g, return_digits=True)[1] for _ in range(30)])
    freq = torch.bincount(digits, minlength=K).double() / len(digits)
    assert (freq - brute).abs().max() < 0.03
