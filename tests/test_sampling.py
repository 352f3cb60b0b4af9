import pytest
import torch

from engine.sampling import categorical, greedy, gumbel_softmax, make_sampler, top_k_sampler


def chi_square_p_value(counts: torch.Tensor, probs: torch.Tensor) -> float:
    expected = probs * counts.sum()
    stat = ((counts - expected) ** 2 / expected).sum()
    dof = torch.tensor(float(len(counts) - 1), dtype=torch.float64)
    return (1 - torch.special.gammainc(dof / 2, stat.double() / 2)).item()


LOGITS = torch.tensor([1.0, 0.0, -1.0, 2.0, 0.5])
N = 40_000


def counts_of(samples, q=5):
    return torch.bincount(samples, minlength=q).double()


@pytest.mark.parametrize("temperature", [1.0, 0.5, 2.0])
def test_temperature_sampler_matches_softmax(temperature):
    g = torch.Generator().manual_seed(0)
    samples = categorical(LOGITS.expand(N, -1), temperature, g)
    p = chi_square_p_value(counts_of(samples), torch.softmax(LOGITS.double() / temperature, -1))
    assert p > 1e-3


def test_top_k_matches_renormalised_top_k():
    g = torch.Generator().manual_seed(1)
    samples = top_k_sampler(2, 1.0, g)(LOGITS.expand(N, -1))
    assert set(samples.unique().tolist()) == {0, 3}
    c = counts_of(samples)[[0, 3]]
    assert chi_square_p_value(c, torch.softmax(LOGITS[[0, 3]].double(), -1)) > 1e-3


def test_gumbel_softmax_hard_samples_match_softmax_and_are_one_hot():
    g = torch.Generator().manual_seed(2)
    y = gumbel_softmax(LOGITS.expand(N, -1), tau=0.7, hard=True, generator=g)
    assert torch.equal(y.sum(-1), torch.ones(N)) and set(y.unique().tolist()) == {0.0, 1.0}
    assert chi_square_p_value(counts_of(y.argmax(-1)), torch.softmax(LOGITS.double(), -1)) > 1e-3


def test_gumbel_softmax_straight_through_has_soft_gradient():
    logits = LOGITS.clone().requires_grad_(True)
    y = gumbel_softmax(logits[None], tau=1.0, hard=True, generator=torch.Generator().manual_seed(3))
    (y * torch.arange(5.0)).sum().backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0
    soft = gumbel_softmax(LOGITS[None], tau=1.0, hard=False, noise=torch.zeros(1, 5))
    torch.testing.assert_close(soft, torch.softmax(LOGITS[None], -1))


def test_greedy_and_bad_arguments():
    assert torch.equal(greedy(LOGITS[None]), torch.tensor([3]))
    assert make_sampler("greedy") is greedy
    assert make_sampler("temperature", temperature=0) is greedy  # temperature 0 means greedy, by name too
    rows = torch.tensor([[0.0, 5.0, 1.0], [3.0, -1.0, 2.9]])
    assert torch.equal(make_sampler("temperature", temperature=0)(rows), torch.tensor([1, 0]))
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="temperature"):
            categorical(LOGITS[None], bad)
    with pytest.raises(ValueError, match="Unknown sampler"):
        make_sampler("beam")
