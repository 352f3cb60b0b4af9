"""MADE: any order, order-agnostic training, and exact completion (known pixels first) checked against
brute-force conditioning of the model's joint distribution in that order."""

import itertools

import pytest
import torch
import torch.nn.functional as F

from engine.any_order import complete_known_first, known_first_order, log_likelihood_of_known
from engine.models.made import MADE, MADEConfig
from tests.families import tiny_made, tiny_pixelcnn


def joint_log_probs(model, images: torch.Tensor, order: torch.Tensor, k: int) -> torch.Tensor:
    """log p(x | y=k) of raster images (M, N) under the model read in `order` -> (M,)."""
    rows = images[:, order]
    cond = F.one_hot(torch.full((len(images),), k), model.config.cond_channels).double()
    with torch.no_grad():
        return model.log_probs(rows, cond, order=order).gather(-1, rows[:, :, None]).sum(dim=(1, 2))


@pytest.mark.parametrize("Q", [2, 3])
def test_every_order_is_a_normalized_model(Q):
    model = tiny_made(Q, 2, 2, 3).double()
    images = torch.tensor(list(itertools.product(range(Q), repeat=6)))
    for seed in range(3):
        order = torch.randperm(6, generator=torch.Generator().manual_seed(seed))
        torch.testing.assert_close(joint_log_probs(model, images, order, 1).exp().sum(), torch.tensor(1.0, dtype=torch.double))


def test_orders_are_checked():
    model = tiny_made(2, 0, 2, 3)
    with pytest.raises(ValueError, match="permutation"):
        model.log_probs(torch.zeros(1, 6, dtype=torch.long), None, order=torch.tensor([0, 1, 2, 3, 4, 4]))
    with pytest.raises(ValueError, match="permutation"):
        model.start(torch.zeros(1, 0, dtype=torch.long), None, order=[0, 1, 2])
    with pytest.raises(ValueError, match="hidden_sizes"):
        MADEConfig(hidden_sizes=[])


def test_training_draws_orders_but_scores_every_pixel():
    model = MADE(MADEConfig(quantization_levels=2, cond_channels=0, height=2, width=3, hidden_sizes=[8], order_agnostic=1.0))
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


def test_exact_completion_equals_brute_force_conditioning():
    """Every completion of the hole has the probability the joint (known pixels first) gives it,
    normalized over all completions; completions drawn by complete_known_first follow it."""
    Q, K = 3, 2
    model = tiny_made(Q, K, 2, 3).double()
    image = torch.tensor([2, 0, 1, 1, 2, 0])
    known = torch.tensor([True, False, True, False, True, False])
    order = known_first_order(known)
    hole = (~known).nonzero().view(-1)
    fills = torch.tensor(list(itertools.product(range(Q), repeat=len(hole))))  # (27, 3)
    candidates = image.repeat(len(fills), 1)
    candidates[:, hole] = fills
    k = 1
    brute = torch.softmax(joint_log_probs(model, candidates, order, k), dim=0)  # p(hole | known, y) by enumeration
    # the sampler's own probability of each completion: the state's conditionals along the hole
    state = model.start(image[order[:3]][None].expand(len(fills), -1), F.one_hot(torch.full((len(fills),), k), K).double(), order=order)
    logp = torch.zeros(len(fills), dtype=torch.double)
    for t in range(3, 6):
        value = candidates[:, order[t]]
        logp += state.log_probs.gather(1, value[:, None]).squeeze(1)
        state.step(value)
    torch.testing.assert_close(logp.exp(), brute)
    # and the draws follow it (a fixed seed: the test is deterministic)
    draws, labels = complete_known_first(model, image, known, torch.full((4000,), k), 4000, generator=torch.Generator().manual_seed(0))
    assert torch.equal(draws[:, known], image[known].expand(4000, -1)) and torch.equal(labels, torch.full((4000,), k))
    index = (draws[:, hole] * torch.tensor([Q * Q, Q, 1])).sum(dim=1)
    freq = torch.bincount(index, minlength=len(fills)).double() / 4000
    assert (freq - brute).abs().max() < 0.03


def test_exact_completion_draws_the_digit_from_the_known_pixels():
    Q, K = 2, 3
    model = tiny_made(Q, K, 2, 3).double()
    image = torch.tensor([1, 0, 1, 1, 0, 0])
    known = torch.tensor([True, True, False, True, False, True])
    order = known_first_order(known)
    # p(known | y) from the whole joint by summing out the hole, for every class
    hole = (~known).nonzero().view(-1)
    fills = torch.tensor(list(itertools.product(range(Q), repeat=len(hole))))
    candidates = image.repeat(len(fills), 1)
    candidates[:, hole] = fills
    brute = torch.stack([torch.logsumexp(joint_log_probs(model, candidates, order, k), dim=0) for k in range(K)])
    torch.testing.assert_close(log_likelihood_of_known(model, image, known), brute)
    _, labels = complete_known_first(model, image, known, None, 3000, generator=torch.Generator().manual_seed(1))
    freq = torch.bincount(labels, minlength=K).double() / 3000
    assert (freq - torch.softmax(brute, dim=0)).abs().max() < 0.03


def test_exact_completion_needs_an_any_order_model():
    with pytest.raises(ValueError, match="any pixel first"):
        complete_known_first(tiny_pixelcnn(2, 0, 2, 3), torch.zeros(6, dtype=torch.long), torch.ones(6, dtype=torch.bool), None, 1)


def test_complete_reads_every_known_pixel_first_for_an_any_order_model():
    """image_tasks.complete on MADE: known pixels kept, the hole drawn exactly (same draws as complete_known_first)."""
    from engine.image_tasks import complete

    model = tiny_made(2, 3, 4, 5).double()
    model.data_config = {"task": "mnist", "quantization": {"levels": 2}, "threshold": 127, "scan_order": "raster",
                         "height": 4, "width": 5, "start_value": 0, "conditions": ["a", "b", "c"]}
    image = (torch.rand(4, 5, generator=torch.Generator().manual_seed(0)) > 0.5).to(torch.uint8) * 255
    mask = torch.ones(4, 5, dtype=torch.bool)
    mask[1:3, 1:4] = False
    out, digits = complete(model, image, mask, None, n=6, generator=torch.Generator().manual_seed(2), return_digits=True)
    assert out.shape == (6, 4, 5) and torch.equal(out[:, mask], image[mask].expand(6, -1))
    levels, labels = complete_known_first(model, (image.view(-1) > 127).long(), mask.view(-1), None, 6,
                                          generator=torch.Generator().manual_seed(2))
    assert torch.equal(digits, labels) and torch.equal(out.view(6, -1), levels.to(torch.uint8) * 255)
