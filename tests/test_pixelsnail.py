"""What is specific to PixelSNAIL (engine/models/pixelsnail.py): the strictly causal attention mask (and
that the inclusive one would leak), the first pixel's attention row that attends to nothing, a
gradient map of the whole model (each row reads every earlier pixel and nothing else: no blind spot),
and the fast state against the naive one on a larger model than tests/families.py's."""

import pytest
import torch
import torch.nn.functional as F

import engine.models.pixelsnail as pixelsnail
from engine.models.base import NaiveState
from engine.models.pixelsnail import PixelSNAIL, PixelSNAILConfig, attention_mask, causal_attention
from test_interface import step_together


def small_model(Q=3, K=2, H=4, W=5, residuals=2, seed=1) -> PixelSNAIL:
    model = PixelSNAIL(PixelSNAILConfig(quantization_levels=Q, cond_channels=K, height=H, width=W, channels=6, blocks=2,
                                        residuals=residuals, key_channels=4))
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.3)
    return model.eval()


def input_gradients(model, levels, cond) -> torch.Tensor:
    """(N_out, N_in) bool: whether row t of log_probs has a non-zero gradient with respect to the one-hot
    input at pixel s (every level's entry), through the whole model."""
    c = model.config
    x = F.one_hot(levels.view(1, c.height, c.width), c.quantization_levels).permute(0, 3, 1, 2).double().requires_grad_(True)
    model.one_hot = lambda image: x  # the model reads this leaf instead of its own one-hot (an instance attribute)
    try:
        out = model.log_probs(levels, cond)[0]  # (N, Q)
        rows = []
        for t in range(out.shape[0]):
            g, = torch.autograd.grad(out[t].sum(), x, retain_graph=True)
            rows.append(g[0].abs().sum(dim=0).flatten() > 0)
    finally:
        del model.one_hot
    assert torch.isfinite(out).all()
    return torch.stack(rows)


def test_the_mask_reads_strictly_earlier_pixels_and_row_0_nothing():
    bias, keep = attention_mask(5, torch.float32)
    allowed = torch.isfinite(bias) & (keep > 0)
    assert torch.equal(allowed, torch.ones(5, 5, dtype=torch.bool).tril(-1))
    assert torch.isfinite(bias[0]).all() and keep[0].item() == 0.0  # a finite row, zeroed: no NaN


@pytest.mark.parametrize("scale", [1.0, 1e4])
def test_attention_row_0_is_zero_and_the_others_are_the_softmax_over_earlier_pixels(scale):
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 7, 4, generator=g, dtype=torch.double) * s for s in (scale, scale, 1.0))
    for t in (q, k, v):
        t.requires_grad_(True)
    out = causal_attention(q, k, v)
    assert torch.isfinite(out).all()
    assert torch.equal(out[:, 0], torch.zeros_like(out[:, 0]))
    for t in range(1, 7):  # row t: a softmax over s < t only
        w = torch.softmax(q[:, t:t + 1] @ k[:, :t].transpose(1, 2) / 2.0, dim=-1)
        torch.testing.assert_close(out[:, t], (w @ v[:, :t])[:, 0])
    grads = torch.autograd.grad(out[:, 0].sum(), (q, k, v), allow_unused=True, retain_graph=True)
    assert all(gr is None or torch.equal(gr, torch.zeros_like(gr)) for gr in grads)  # row 0 depends on no pixel
    grads = torch.autograd.grad(out[:, 1:].sum(), (q, k, v))
    assert all(torch.isfinite(gr).all() for gr in grads)


@torch.no_grad()
def test_the_first_pixel_depends_on_no_pixel_only_on_the_digit():
    model = small_model()
    N = 20
    levels = torch.randint(0, 3, (4, N), generator=torch.Generator().manual_seed(0))
    cond = F.one_hot(torch.tensor([0, 0, 1, 1]), 2).float()
    changed = (levels + 1 + torch.arange(N) % 2) % 3  # every pixel different
    first, moved = model.log_probs(levels, cond)[:, 0], model.log_probs(changed, cond)[:, 0]
    assert torch.isfinite(first).all()
    torch.testing.assert_close(moved, first, rtol=0, atol=0)
    assert torch.equal(first[0], first[1]) and not torch.allclose(first[0], first[2])  # the digit does matter


@pytest.mark.parametrize("H,W", [(4, 5), (5, 3)])
def test_each_row_has_gradients_from_every_earlier_pixel_and_no_other(H, W):
    """Causal, and no blind spot: the attention reaches the pixels above and to the right that the
    2x2 down-right convolutions cannot."""
    model = small_model(H=H, W=W).double()
    N = H * W
    levels = torch.randint(0, 3, (1, N), generator=torch.Generator().manual_seed(H))
    reads = input_gradients(model, levels, F.one_hot(torch.tensor([1]), 2).double())
    assert torch.equal(reads, torch.ones(N, N, dtype=torch.bool).tril(-1))


def test_an_inclusive_mask_would_leak_each_pixel_into_its_own_prediction(monkeypatch):
    """Keys and values at pixel s carry x_s, so pixel t may attend to s < t only; attending to s <= t (the
    diagonal too) lets row t read x_t. The gradient test above catches that."""
    def inclusive(N, dtype, device=None):
        allowed = torch.ones(N, N, dtype=torch.bool, device=device).tril(0)
        return torch.zeros(N, N, dtype=dtype, device=device).masked_fill(~allowed, float("-inf")), torch.ones(N, 1, dtype=dtype)

    monkeypatch.setattr(pixelsnail, "attention_mask", inclusive)
    model = small_model().double()
    levels = torch.randint(0, 3, (1, 20), generator=torch.Generator().manual_seed(0))
    reads = input_gradients(model, levels, F.one_hot(torch.tensor([0]), 2).double())
    assert reads.diagonal().all()


@pytest.mark.parametrize("T0", [0, 4, 5, 13])
@torch.no_grad()
def test_the_fast_state_equals_the_naive_state_on_a_deeper_model(T0):
    """Two convolutional units per block, prefixes that end mid-row and at a row's end, and a reorder."""
    model = small_model(residuals=2)
    N = 20
    prefix = torch.randint(0, 3, (3, T0), generator=torch.Generator().manual_seed(T0))
    cond = F.one_hot(torch.tensor([1, 0, 1]), 2).float()
    steps = N - T0
    fast, naive = model.start(prefix, cond), NaiveState(model, prefix, cond)
    step_together(fast, naive, steps - 1, seed=T0, reorder_at=steps // 3, index=torch.tensor([1, 1, 0, 2]))
    fast.step(torch.zeros(4, dtype=torch.long))  # the last pixel
    assert fast.log_probs is None
    with pytest.raises(ValueError, match="no next pixel"):
        fast.step(torch.zeros(4, dtype=torch.long))


def test_bad_inputs_are_refused_clearly():
    model = small_model()
    with pytest.raises(ValueError, match="prefix has 21 values but the image has only 20 pixels"):
        model.start(torch.zeros(1, 21, dtype=torch.long), F.one_hot(torch.tensor([0]), 2).float())
    with pytest.raises(ValueError, match="needs a condition of shape"):
        model.start(torch.zeros(1, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="PixelSNAILConfig.key_channels must be an integer >= 1"):
        PixelSNAILConfig(key_channels=0)
    with pytest.raises(ValueError, match=r"PixelSNAILConfig.dropout must be a number in \[0, 1\)"):
        PixelSNAILConfig(dropout=1.0)
