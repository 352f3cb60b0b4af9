"""The image families (MADE, PixelCNN, Gated PixelCNN) on tiny images with random weights: exact
normalization, causality as a black-box perturbation map (and the exact dependency set each paper
promises: PixelCNN's blind spot, none for Gated PixelCNN), and fast state == naive state."""

import itertools

import pytest
import torch
import torch.nn.functional as F

from engine.models.base import NaiveState
from engine.sampling import temperature_sampler
from tests.families import tiny_gated_pixelcnn, tiny_made, tiny_pixelcnn

FAMILIES = {"made": tiny_made, "pixelcnn": tiny_pixelcnn, "gated_pixelcnn": tiny_gated_pixelcnn}


def conditions(K: int, rows: int, k: int) -> torch.Tensor | None:
    return F.one_hot(torch.full((rows,), k), K).double() if K else None


def dependency(model, levels: torch.Tensor, cond_k: int = 0) -> torch.Tensor:
    """(N_out, N_in) bool: whether output row t changes when input pixel p changes to any other level."""
    Q = model.config.quantization_levels
    N = levels.numel()
    batch = [levels]
    for p in range(N):
        for v in range(Q):
            if v != levels[p]:
                changed = levels.clone()
                changed[p] = v
                batch.append(changed)
    batch = torch.stack(batch)
    with torch.no_grad():
        out = model.log_probs(batch, conditions(model.config.cond_channels, len(batch), cond_k))
    moved = (out[1:] - out[:1]).abs().amax(dim=-1) > 1e-9  # (N*(Q-1), N_out)
    return moved.view(N, Q - 1, N).any(dim=1).t()


@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize("Q", [2, 3])
@pytest.mark.parametrize("K", [0, 3])
def test_probabilities_of_all_images_sum_to_one(family, Q, K):
    model = FAMILIES[family](Q, K, 2, 3).double()
    images = torch.tensor(list(itertools.product(range(Q), repeat=6)))
    for k in range(max(K, 1)):
        with torch.no_grad():
            logp = model.log_probs(images, conditions(K, len(images), k))
        total = logp.gather(-1, images[:, :, None]).sum(dim=(1, 2)).exp().sum()
        torch.testing.assert_close(total, torch.tensor(1.0, dtype=torch.double))


@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize("H,W", [(2, 3), (4, 5), (5, 3)])
def test_causal_each_row_reads_only_earlier_pixels(family, H, W):
    model = FAMILIES[family](3, 2, H, W).double()
    torch.manual_seed(H * W)
    seen = torch.zeros(H * W, H * W, dtype=torch.bool)
    for k in range(2):
        for _ in range(3):
            dep = dependency(model, torch.randint(0, 3, (H * W,)), k)
            assert not torch.triu(dep).any(), f"a row depends on its own or a later pixel: {torch.triu(dep).nonzero().tolist()}"
            seen |= dep
    assert seen[-1].any(), "the last pixel reads earlier ones (the perturbation map is not blind)"


def test_pixelcnn_reads_exactly_its_documented_field_and_has_a_blind_spot():
    H, W = 6, 7
    model = tiny_pixelcnn(3, 2, H, W).double()
    dep = dependency(model, torch.randint(0, 3, (H * W,), generator=torch.Generator().manual_seed(0)))
    for t in range(H * W):
        expected = model.dependency_map(*divmod(t, W)).view(-1)
        assert torch.equal(dep[t], expected), f"pixel {divmod(t, W)}"
    # the blind spot: (4, 2) cannot see (3, 5), one row up and three columns right, though it comes earlier
    assert not dep[4 * W + 2, 3 * W + 5] and dep[4 * W + 2, 3 * W + 3]


def test_gated_pixelcnn_reads_everything_above_and_left_no_blind_spot():
    H, W = 4, 4  # small enough that its receptive field covers every earlier pixel
    model = tiny_gated_pixelcnn(3, 2, H, W).double()
    dep = dependency(model, torch.randint(0, 3, (H * W,), generator=torch.Generator().manual_seed(0)))
    before = torch.tril(torch.ones(H * W, H * W, dtype=torch.bool), diagonal=-1)
    assert torch.equal(dep, before)


def test_gated_pixelcnn_sees_above_right_where_pixelcnn_is_blind():
    H, W = 6, 7
    gated = tiny_gated_pixelcnn(3, 2, H, W).double()
    dep = dependency(gated, torch.randint(0, 3, (H * W,), generator=torch.Generator().manual_seed(1)))
    i, j = 4, 2
    seen = dep[i * W + j].view(H, W)
    blind = tiny_pixelcnn(3, 2, H, W).dependency_map(i, j)  # same first kernel, 2 more layers deep
    assert (seen & ~blind)[:i].any(), "it sees pixels above and to the right that PixelCNN cannot"
    rows = seen.any(dim=1).nonzero().view(-1)
    cols = seen[:i].any(dim=0).nonzero().view(-1)
    above = torch.zeros(H, W, dtype=torch.bool)
    above[rows[0]:i, cols[0]:cols[-1] + 1] = True
    assert torch.equal(seen[:i], above[:i]), "the field above the pixel is a full rectangle: no blind spot"
    assert seen[i, :j].all() and not seen[i, j:].any()


def naive(model, prefix, cond, order=None):
    """The oracle (an any-order model's reads its log_probs in that order)."""
    return NaiveState(model, prefix, cond) if order is None else NaiveState(model, prefix, cond, order=order)


def orders(family, N):
    yield None
    if family == "made":
        yield torch.randperm(N, generator=torch.Generator().manual_seed(3))


@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize("T0", [0, 1, 4, 7])
@pytest.mark.parametrize("H,W", [(3, 4), (5, 9)])  # 5x9: wider and taller than PixelCNN's window
def test_fast_state_equals_naive_state(family, T0, H, W):
    Q, K = 3, 2
    model = FAMILIES[family](Q, K, H, W).double()
    N = H * W
    g = torch.Generator().manual_seed(T0)
    x = torch.randint(0, Q, (3, N), generator=g)
    cond = F.one_hot(torch.tensor([0, 1, 1]), K).double()
    for order in orders(family, N):
        kw = {} if order is None else {"order": order}
        fast, slow = model.start(x[:, :T0], cond, **kw), naive(model, x[:, :T0], cond, order)
        for t in range(T0, N):
            torch.testing.assert_close(fast.log_probs, slow.log_probs)
            if t == T0 + 2:  # particle resampling to another row count
                index = torch.tensor([2, 0, 0, 1, 2])
                fast.reorder(index), slow.reorder(index)
                x, cond = x[index], cond[index]
                torch.testing.assert_close(fast.log_probs, slow.log_probs)
            fast.step(x[:, t]), slow.step(x[:, t])
        assert fast.log_probs is None and slow.log_probs is None
        x, cond = x[:3], cond[:3]


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_fast_and_naive_sample_the_same_images_with_the_same_seed(family):
    H, W, Q, K = 3, 4, 3, 2
    model = FAMILIES[family](Q, K, H, W).double()
    cond = F.one_hot(torch.tensor([0, 1, 0, 1]), K).double()
    samples = []
    for make in (model.start, lambda p, c: naive(model, p, c)):
        sample = temperature_sampler(1.0, torch.Generator().manual_seed(7))
        state, seq = make(torch.zeros(4, 0, dtype=torch.long), cond), []
        while state.log_probs is not None:
            seq.append(sample(state.log_probs))
            state.step(seq[-1])
        samples.append(torch.stack(seq, dim=1))
    assert torch.equal(samples[0], samples[1])
    assert samples[0].unique().numel() > 1


@pytest.mark.parametrize("family", ["pixelcnn", "gated_pixelcnn"])
def test_complete_by_smc_with_the_digit_drawn_from_the_known_prefix(family):
    """complete() on a fixed-length raster family, digit not given: p(y | pixels above the hole) is
    scored on whole images (the family reads nothing shorter), the known pixels are kept."""
    from engine.completion import complete

    H, W, K = 4, 5, 3
    model = FAMILIES[family](2, K, H, W)
    model.data_config = {"task": "mnist", "quantization": {"levels": 2}, "threshold": 127, "scan_order": "raster",
                         "height": H, "width": W, "start_value": 0, "conditions": [f"digit {k}" for k in range(K)]}
    image = (torch.rand(H, W, generator=torch.Generator().manual_seed(0)) > 0.5).to(torch.uint8) * 255
    mask = torch.ones(H, W, dtype=torch.bool)
    mask[1:3, 1:4] = False
    out, digits = complete(model, image, mask, None, n=3, num_particles=4, generator=torch.Generator().manual_seed(1),
                           return_digits=True)
    assert out.shape == (3, H, W) and torch.equal(out[:, mask], image[mask].expand(3, -1))
    assert ((digits >= 0) & (digits < K)).all()


@pytest.mark.parametrize("family", ["pixelcnn", "gated_pixelcnn", "made"])
def test_naive_rows_then_the_fast_state_sample_the_same_digits(family, monkeypatch):
    """iter_sample_images(naive_rows=r) (the Sample page's "naive generator for the first rows"): the
    first r rows come from NaiveState, one pixel at a time, then the family's fast state takes over from
    what they sampled; with the same seed the digits equal those of the fast state alone."""
    import engine.image_tasks as image_tasks

    H, W, K = 4, 5, 3
    model = FAMILIES[family](2, K, H, W)
    model.data_config = {"task": "mnist", "quantization": {"levels": 2}, "threshold": 127, "scan_order": "raster",
                         "height": H, "width": W, "start_value": 0, "conditions": [f"digit {k}" for k in range(K)]}
    naive_steps = []

    class CountingNaiveState(NaiveState):
        def step(self, levels):
            naive_steps.append(self.seq.shape[1])
            return super().step(levels)

    monkeypatch.setattr(image_tasks, "NaiveState", CountingNaiveState)

    def sample(naive_rows):
        steps = image_tasks.iter_sample_images(model, [0, 2], n=3, generator=torch.Generator().manual_seed(5),
                                               every=W, naive_rows=naive_rows)
        return list(steps)[-1][1]

    fast = sample(0)
    assert naive_steps == []
    assert torch.equal(sample(2), fast)
    assert naive_steps == list(range(2 * W))  # the naive state stepped through exactly the first two rows
    with pytest.raises(ValueError, match="naive_rows"):
        sample(H + 1)
