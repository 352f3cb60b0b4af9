import torch
import torch.nn.functional as F

from engine.encoding import one_hot
from engine.models.wavenet import WaveNet, WaveNetConfig
from engine.sampling import gumbel_noise, gumbel_softmax
from engine.training import check_origins, teacher_forced, unrolled_loss
import pytest


def make(cond=2):
    torch.manual_seed(0)
    cfg = WaveNetConfig(quantization_levels=6, residual_channels=8, skip_channels=10, head_channels=10,
                        dilations=[1, 2, 4], kernel_size=2, input_kernel_size=2, cond_channels=cond)
    return WaveNet(cfg).double()


def per_origin_loss(model, seq, cond, o, horizon, tau, noise):
    """One origin at a time, the plain way: full forwards over the growing sequence of inputs."""
    Q = model.config.quantization_levels
    inputs = one_hot(seq[:, : o + 1], Q).double()
    losses = []
    for h in range(horizon):
        logits = model(inputs, cond)[:, :, -1]
        losses.append(F.cross_entropy(logits, seq[:, o + 1 + h]))
        if h < horizon - 1:
            sample = gumbel_softmax(logits, tau, hard=True, noise=noise[:, h])
            inputs = torch.cat([inputs, sample[:, :, None]], dim=2)
    return torch.stack(losses).mean()


@pytest.mark.parametrize("cond_channels", [0, 2])
def test_batched_unrolled_loss_equals_mean_of_per_origin_losses(cond_channels):
    model = make(cond_channels)
    g = torch.Generator().manual_seed(0)
    B, T, H = 3, 30, 5
    seq = torch.randint(0, 6, (B, T), generator=g)
    cond = torch.eye(2, dtype=torch.double)[[0, 1, 1]] if cond_channels else None
    origins = torch.tensor([0, 4, 11, 20, 24])
    noise = gumbel_noise((B * len(origins), H - 1, 6), g).double()
    _, logits, inputs = teacher_forced(model, seq, cond)
    batched = unrolled_loss(model, seq, cond, logits, inputs, origins, H, tau=0.8, noise=noise)
    one_by_one = torch.stack([
        per_origin_loss(model, seq, cond, o, H, 0.8, noise.view(B, len(origins), H - 1, 6)[:, i])
        for i, o in enumerate(origins.tolist())
    ]).mean()
    torch.testing.assert_close(batched, one_by_one)
    # and the gradients agree too
    gb = torch.autograd.grad(batched, list(model.parameters()))
    _, logits, inputs = teacher_forced(model, seq, cond)
    go = torch.autograd.grad(torch.stack([
        per_origin_loss(model, seq, cond, o, H, 0.8, noise.view(B, len(origins), H - 1, 6)[:, i])
        for i, o in enumerate(origins.tolist())
    ]).mean(), list(model.parameters()))
    for a, b in zip(gb, go):
        torch.testing.assert_close(a, b)


def test_origins_out_of_range_are_rejected():
    with pytest.raises(ValueError, match="Origins"):
        check_origins(torch.tensor([26]), 5, 30)
