"""Tiny random models of every registered family, for the interface tests (causality, exact
normalization, fast state == naive state). A family that lands adds its builder to TINY; the
interface tests parametrize over it, so every family meets the same checks.

A builder takes (Q, K, H, W) and returns a model with random weights in eval() mode whose sequences are
images of H x W in raster order (families of any length, like WaveNet, ignore H and W)."""

from __future__ import annotations

import torch

from engine.models.wavenet import WaveNet, WaveNetConfig


def tiny_wavenet(Q: int, K: int, H: int, W: int) -> WaveNet:
    torch.manual_seed(0)
    model = WaveNet(WaveNetConfig(quantization_levels=Q, residual_channels=6, skip_channels=8, head_channels=8,
                                  dilations=[1, 2, 4], cond_channels=K))
    return model.eval()


def tiny_mixture(Q: int, K: int, H: int, W: int):
    """Two tiny WaveNets of different widths and receptive fields, weighted 0.6 / 0.4."""
    from engine.recipes.mixture import mixture_of

    torch.manual_seed(1)
    other = WaveNet(WaveNetConfig(quantization_levels=Q, residual_channels=4, skip_channels=6, head_channels=6,
                                  dilations=[1, 1, 2], cond_channels=K))
    return mixture_of([tiny_wavenet(Q, K, H, W), other], [0.6, 0.4])


TINY = {
    "wavenet": tiny_wavenet,
    "mixture": tiny_mixture,
}
