"""PixelCNN++ specifics (engine/models/pixelcnnpp.py, pixelcnnpp_state.py): no blind spot, the fast state
against the naive one at three and four resolutions and at sizes that need padding, clear refusals."""

import pytest
import torch
import torch.nn.functional as F

from engine.models.base import NaiveState
from engine.models.pixelcnnpp import PixelCNNPlusPlus, PixelCNNPlusPlusConfig


def model_of(H, W, stages, resnets, Q=5, K=2, std=0.3):
    torch.manual_seed(0)
    model = PixelCNNPlusPlus(PixelCNNPlusPlusConfig(quantization_levels=Q, cond_channels=K, height=H, width=W, filters=3,
                                                    resnets=resnets, stages=stages, components=2)).double().eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, std)
    return model


def test_bad_configs_are_refused_clearly():
    with pytest.raises(ValueError, match="PixelCNNPlusPlusConfig.components must be an integer >= 1"):
        PixelCNNPlusPlusConfig(components=0)
    with pytest.raises(ValueError, match="PixelCNNPlusPlusConfig.quantization_levels must be an integer >= 2"):
        PixelCNNPlusPlusConfig(quantization_levels=1)
    with pytest.raises(ValueError, match="resnets must be an integer >= 0"):
        PixelCNNPlusPlusConfig(resnets=-1)


@torch.no_grad()
def test_a_pixel_reads_the_pixels_above_and_to_its_right_no_blind_spot():
    """Pixel (4, 3) of an 8x8 image: every pixel of the rows above, also those above and to the right that
    PixelCNN's masked stack never reaches, and the pixels to its left; none after it."""
    model = model_of(8, 8, stages=3, resnets=1, K=0)
    levels = torch.randint(0, 5, (1, 64), generator=torch.Generator().manual_seed(0))
    target = 4 * 8 + 3
    base = model.log_probs(levels)[0, target]
    reads = []
    for t in range(64):
        changed = levels.clone()
        changed[0, t] = (changed[0, t] + 2) % 5
        reads.append(not torch.allclose(model.log_probs(changed)[0, target], base, rtol=0, atol=1e-12))
    assert reads[:target] == [True] * target
    assert not any(reads[target:])


@pytest.mark.parametrize("H,W,stages,resnets", [(8, 8, 3, 1), (5, 6, 3, 0), (7, 9, 3, 2), (16, 12, 4, 1)])
@torch.no_grad()
def test_the_fast_state_equals_the_naive_state_at_every_resolution(H, W, stages, resnets):
    """In float64, to 1e-9 of the log-probs' size, after a prefix, across a reorder that duplicates rows.
    (5x6 and 7x9 are padded to a multiple of 4; 16x12 has four resolutions.)"""
    model = model_of(H, W, stages, resnets)
    N = H * W
    g = torch.Generator().manual_seed(H)
    seq = torch.randint(0, 5, (3, N), generator=g)
    cond = F.one_hot(torch.tensor([0, 1, 1]), 2).double()
    T0 = W + 1
    fast, naive = model.start(seq[:, :T0], cond), NaiveState(model, seq[:, :T0], cond)
    for t in range(T0, N):
        scale = max(1.0, naive.log_probs.abs().max().item())
        torch.testing.assert_close(fast.log_probs, naive.log_probs, rtol=0, atol=1e-9 * scale)
        if t == N // 2:
            index = torch.tensor([2, 2, 0, 1])
            fast.reorder(index)
            naive.reorder(index)
            seq = seq.index_select(0, index)
        fast.step(seq[:, t])
        naive.step(seq[:, t])
    assert fast.log_probs is None and naive.log_probs is None


@pytest.mark.parametrize("T0", [0, 12, 5 * 12 + 7, 15 * 12 + 11, 16 * 12])
@torch.no_grad()
def test_the_state_keeps_four_rows_per_resolution_and_primes_from_any_prefix(T0):
    """16x12 at four resolutions (16, 8, 4, 2 rows): every buffer holds at most 4 rows (a ring), and the
    row-by-row priming gives the naive log-probs from a prefix of any length: none, a whole row, mid-image,
    one pixel short of the end, the whole image."""
    H, W = 16, 12
    model = model_of(H, W, stages=4, resnets=1)
    g = torch.Generator().manual_seed(T0)
    seq = torch.randint(0, 5, (2, H * W), generator=g)
    cond = F.one_hot(torch.tensor([1, 0]), 2).double()
    fast, naive = model.start(seq[:, :T0], cond), NaiveState(model, seq[:, :T0], cond)
    assert max(b.tensor.shape[1] for b in fast.buffers) == 4
    for t in range(T0, min(T0 + 2 * W + 3, H * W)):  # across at least two row ends
        scale = max(1.0, naive.log_probs.abs().max().item())
        torch.testing.assert_close(fast.log_probs, naive.log_probs, rtol=0, atol=1e-9 * scale)
        fast.step(seq[:, t])
        naive.step(seq[:, t])
    if T0 == H * W:
        assert fast.log_probs is None and naive.log_probs is None


@torch.no_grad()
def test_the_state_refuses_a_prefix_too_long_and_a_step_past_the_image():
    model = model_of(2, 3, stages=2, resnets=1)
    cond = F.one_hot(torch.tensor([1]), 2).double()
    with pytest.raises(ValueError, match="prefix has 7 values but the image has only 6 pixels"):
        model.start(torch.zeros(1, 7, dtype=torch.long), cond)
    state = model.start(torch.zeros(1, 6, dtype=torch.long), cond)
    assert state.log_probs is None
    with pytest.raises(ValueError, match="The image is complete"):
        state.step(torch.zeros(1, dtype=torch.long))
    with pytest.raises(ValueError, match="needs a condition of shape"):
        model.start(torch.zeros(1, 0, dtype=torch.long), None)


@torch.no_grad()
def test_the_architecture_note_gives_the_reach_in_the_own_row():
    """2 + 4R pixels to the left on a row no coarser level begins on (row 5 of 8), as the card says."""
    for resnets in (0, 1, 2):
        model = model_of(8, 16, stages=2, resnets=resnets, K=0)
        levels = torch.randint(0, 5, (1, 128), generator=torch.Generator().manual_seed(1))
        target = 5 * 16 + 15
        base = model.log_probs(levels)[0, target]
        reach = 0
        for left in range(1, 16):
            changed = levels.clone()
            changed[0, target - left] = (changed[0, target - left] + 2) % 5
            if not torch.allclose(model.log_probs(changed)[0, target], base, rtol=0, atol=1e-12):
                reach = left
        assert reach == 2 + 4 * resnets
        assert f"in its own row the {2 + 4 * resnets} pixels to its left" in model.architecture_note()
