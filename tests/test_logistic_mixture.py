"""The discretized logistic mixture (engine/models/logistic_mixture.py): the bin masses against a direct
numeric integration of the logistic density, exact normalization at any Q, finite values and gradients
at extreme parameters, and the written-out backward pass against finite differences."""

import math

import pytest
import torch
import torch.nn.functional as F

from engine.models.logistic_mixture import (LOG_SCALE_FLOOR, _LevelLogProbs, bin_centres, level_log_probs,
                                           observed_log_probs)
from families import TINY


def pack(logits, means, log_scales):
    return torch.cat([logits, means, log_scales], dim=-1)


def integrated_log_probs(logits, means, log_scales, Q):
    """(M,) parameters of one pixel -> (Q,) log p(level) by Simpson's rule on the mixture's density over
    each bin (steps of 1/20 of the narrowest scale; the edge bins out to 60 of the widest scales beyond
    the means), in log space per bin so that bins deep in a tail keep their relative accuracy."""
    s = torch.exp(log_scales.clamp(min=LOG_SCALE_FLOOR))
    half = 1.0 / (Q - 1)
    reach = 60 * s.max().item() + means.abs().max().item() + 2
    bounds = torch.cat([torch.tensor([-reach], dtype=torch.float64), bin_centres(Q, torch.float64)[:-1] + half,
                        torch.tensor([reach], dtype=torch.float64)])
    log_w = F.log_softmax(logits, dim=-1)
    out = []
    for q in range(Q):
        low, high = bounds[q].item(), bounds[q + 1].item()
        steps = 2 * max(1000, math.ceil((high - low) / (s.min().item() / 20) / 2))
        x = torch.linspace(low, high, steps + 1, dtype=torch.float64)
        u = (x[:, None] - means) / s
        log_density = torch.logsumexp(log_w - u - 2 * F.softplus(-u) - torch.log(s), dim=-1)  # (points,)
        top = log_density.max()
        weights = torch.ones(steps + 1, dtype=torch.float64)
        weights[1:-1:2], weights[2:-1:2] = 4.0, 2.0
        out.append(top + torch.log((weights * torch.exp(log_density - top)).sum() * (high - low) / steps / 3))
    return torch.stack(out)


@pytest.mark.parametrize("Q", [2, 3, 5, 16])
def test_the_bins_agree_with_a_numeric_integration_of_the_density(Q):
    g = torch.Generator().manual_seed(Q)
    M = 3
    for _ in range(4):
        logits = torch.randn(M, generator=g, dtype=torch.float64)
        means = 1.5 * torch.randn(M, generator=g, dtype=torch.float64)
        log_scales = torch.empty(M, dtype=torch.float64).uniform_(-4.0, 0.5, generator=g)
        got = level_log_probs(pack(logits, means, log_scales), Q, M)
        want = integrated_log_probs(logits, means, log_scales, Q)
        torch.testing.assert_close(got, want, rtol=0, atol=1e-7)


def test_a_bin_deep_in_a_tail_keeps_its_exact_mass():
    """Q=5, one narrow component at -1: the bin at 0.5 holds about e^-25 of it. The original's fallback
    (density at the bin centre times the width, used below a mass of 1e-5) is off there by a factor of
    sinh(d/2)/(d/2) ~ 15 for a bin d = 10 scales wide; the log-space difference is exact."""
    Q, logits, means, log_scales = 5, torch.zeros(1, dtype=torch.float64), torch.tensor([-1.0], dtype=torch.float64), torch.tensor([-3.0], dtype=torch.float64)
    got = level_log_probs(pack(logits, means, log_scales), Q, 1)
    want = integrated_log_probs(logits, means, log_scales, Q)
    assert -40 < got[3].item() < -20
    torch.testing.assert_close(got, want, rtol=1e-6, atol=0)
    s, centre, width = math.exp(-3.0), 0.5, 0.5
    u = (centre + 1.0) / s
    fallback = -u - 2 * math.log1p(math.exp(-u)) - math.log(s) + math.log(width)
    assert fallback - want[3].item() == pytest.approx(-math.log(math.sinh(5.0) / 5.0), abs=0.05)  # why it is not used


@pytest.mark.parametrize("Q", [2, 5, 256])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_the_levels_sum_to_one(Q, dtype):
    g = torch.Generator().manual_seed(0)
    params = 3 * torch.randn(64, 12, generator=g).to(dtype)
    total = torch.logsumexp(level_log_probs(params, Q, 4), dim=-1)
    torch.testing.assert_close(total, torch.zeros_like(total), rtol=0, atol=1e-5 if dtype == torch.float32 else 1e-12)


def test_at_two_levels_the_mixture_is_a_bernoulli():
    """One edge at 0 and no interior bin: p(level 1) = sum_m w_m sigma(mean_m / s_m)."""
    g = torch.Generator().manual_seed(1)
    logits, means, log_scales = torch.randn(3, 5, 3, generator=g, dtype=torch.float64)
    p1 = (F.softmax(logits, -1) * torch.sigmoid(means / torch.exp(log_scales.clamp(min=LOG_SCALE_FLOOR)))).sum(-1)
    torch.testing.assert_close(level_log_probs(pack(logits, means, log_scales), 2, 3)[..., 1].exp(), p1)


EXTREMES = {
    "log-scales at the floor": (torch.zeros(3), torch.tensor([-0.3, 0.2, 0.9]), torch.full((3,), -40.0)),
    "means far outside the range": (torch.zeros(3), torch.tensor([-60.0, 45.0, 1e4]), torch.tensor([-7.0, -2.0, 0.0])),
    "all mass in the lowest bin": (torch.tensor([30.0, -30.0, -30.0]), torch.tensor([-25.0, 0.0, 0.0]), torch.full((3,), -7.0)),
    "all mass in the highest bin": (torch.tensor([0.0, 0.0, 0.0]), torch.full((3,), 25.0), torch.full((3,), -7.0)),
    "one logit dominating": (torch.tensor([80.0, -80.0, 0.0]), torch.tensor([0.1, -0.4, 0.5]), torch.tensor([-5.0, -1.0, 1.0])),
    "huge scales": (torch.zeros(3), torch.tensor([0.0, 3.0, -3.0]), torch.tensor([20.0, 60.0, 95.0])),
}


@pytest.mark.parametrize("case", sorted(EXTREMES))
@pytest.mark.parametrize("Q", [2, 5, 256])
def test_loss_and_gradients_are_finite_at_extreme_parameters(case, Q):
    logits, means, log_scales = EXTREMES[case]
    params = pack(logits, means, log_scales).expand(Q, -1).clone().requires_grad_(True)  # one pixel per level
    log_probs = level_log_probs(params, Q, 3)
    loss = -log_probs.gather(-1, torch.arange(Q)[:, None]).sum()  # every level observed once: each bin's own branch
    loss.backward()
    assert torch.isfinite(log_probs).all() and torch.isfinite(loss), case
    assert torch.isfinite(params.grad).all(), case
    torch.testing.assert_close(torch.logsumexp(log_probs, -1), torch.zeros(Q), rtol=0, atol=1e-5)


@pytest.mark.parametrize("case", sorted(EXTREMES))
@pytest.mark.parametrize("Q", [2, 5, 256])
def test_the_observed_bin_alone_equals_its_entry_in_the_whole_distribution_with_the_same_gradient(case, Q):
    """Training scores only the observed bin (`observed_log_probs`); it must be the very number (and
    gradient) that `level_log_probs` gives that bin, at every level and at extreme parameters."""
    logits, means, log_scales = EXTREMES[case]
    base = pack(logits, means, log_scales).double().expand(Q, -1)
    levels = torch.arange(Q)
    a = base.clone().requires_grad_(True)
    b = base.clone().requires_grad_(True)
    whole = level_log_probs(a, Q, 3).gather(-1, levels[:, None])[:, 0]
    alone = observed_log_probs(b, levels, Q, 3)
    torch.testing.assert_close(alone, whole, rtol=1e-9, atol=1e-9)
    whole.sum().backward()
    alone.sum().backward()
    assert torch.isfinite(b.grad).all(), case
    torch.testing.assert_close(b.grad, a.grad, rtol=1e-7, atol=1e-9)


def test_the_observed_bin_on_random_parameters_and_a_shape_mismatch():
    g = torch.Generator().manual_seed(3)
    params = torch.cat([torch.randn(4, 7, 5, generator=g), 2 * torch.randn(4, 7, 5, generator=g),
                        torch.empty(4, 7, 5).uniform_(-8.0, 1.0, generator=g)], dim=-1)
    levels = torch.randint(0, 256, (4, 7), generator=g)
    expected = level_log_probs(params, 256, 5).gather(-1, levels[..., None])[..., 0]
    torch.testing.assert_close(observed_log_probs(params, levels, 256, 5), expected, rtol=1e-5, atol=1e-4)
    with pytest.raises(ValueError, match="do not match"):
        observed_log_probs(params, levels[:, :3], 256, 5)


def test_the_floor_on_log_scales_holds_the_value_and_stops_the_gradient():
    params = pack(torch.zeros(1, 2), torch.tensor([[0.0, 0.5]]), torch.tensor([[-30.0, -1.0]])).requires_grad_(True)
    floored = pack(torch.zeros(1, 2), torch.tensor([[0.0, 0.5]]), torch.tensor([[LOG_SCALE_FLOOR, -1.0]]))
    out = level_log_probs(params, 5, 2)
    torch.testing.assert_close(out, level_log_probs(floored, 5, 2))
    out[0, 2].backward()
    assert params.grad[0, 4] == 0.0 and params.grad[0, 5] != 0.0  # the floored log-scale, the free one


@pytest.mark.parametrize("Q", [2, 3, 5, 9])
def test_the_written_out_backward_matches_finite_differences(Q):
    g = torch.Generator().manual_seed(Q)
    log_w = F.log_softmax(torch.randn(6, 3, generator=g, dtype=torch.float64), -1).requires_grad_(True)
    means = (1.5 * torch.randn(6, 3, generator=g, dtype=torch.float64)).requires_grad_(True)
    log_scales = torch.empty(6, 3, dtype=torch.float64).uniform_(-4.0, 1.0, generator=g).requires_grad_(True)
    edges = bin_centres(Q, torch.float64)[:-1] + 1.0 / (Q - 1)
    assert torch.autograd.gradcheck(lambda a, b, c: _LevelLogProbs.apply(a, b, c, edges), (log_w, means, log_scales))


@pytest.mark.parametrize("Q", [2, 5])
@torch.no_grad()
def test_a_tiny_pixelcnnpp_gives_a_distribution_over_the_levels_at_every_pixel(Q):
    model = TINY["pixelcnnpp"](Q, 3, 3, 4).double()
    levels = torch.randint(0, Q, (4, 12), generator=torch.Generator().manual_seed(Q))
    cond = F.one_hot(torch.tensor([0, 1, 2, 1]), 3).double()
    total = model.log_probs(levels, cond).exp().sum(-1)
    torch.testing.assert_close(total, torch.ones_like(total), rtol=0, atol=1e-12)


@pytest.mark.parametrize("Q", [2, 5])
def test_a_tiny_pixelcnnpp_trains_on_the_observed_bins_alone(Q):
    """PixelCNN++'s `log_likelihood` (what training's loss calls) equals `log_probs` gathered at the
    observed levels, values and parameter gradients."""
    model = TINY["pixelcnnpp"](Q, 3, 3, 4).double()
    levels = torch.randint(0, Q, (3, 12), generator=torch.Generator().manual_seed(Q + 1))
    cond = F.one_hot(torch.tensor([2, 0, 1]), 3).double()
    whole = model.log_probs(levels, cond).gather(-1, levels[..., None])[..., 0]
    whole.sum().backward()
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    alone = model.log_likelihood(levels, cond)
    torch.testing.assert_close(alone, whole)
    alone.sum().backward()
    for p, expected in zip(model.parameters(), grads):
        torch.testing.assert_close(p.grad, expected)
