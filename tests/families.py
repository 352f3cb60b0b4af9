"""Tiny random models of every registered family, for the interface tests (causality, exact
normalization, fast state == naive state). A family that lands adds its builder to TINY; the
interface tests parametrize over it, so every family meets the same checks.

A builder takes (Q, K, H, W) and returns a model with random weights in eval() mode whose sequences are
images of H x W in raster order (families of any length, like WaveNet, ignore H and W)."""

from __future__ import annotations

import torch

from engine.models.gated_pixelcnn import GatedPixelCNN, GatedPixelCNNConfig
from engine.models.made import MADE, MADEConfig
from engine.models.pixelcnn import PixelCNN, PixelCNNConfig
from engine.models.pixelcnnpp import PixelCNNPlusPlus, PixelCNNPlusPlusConfig
from engine.models.pixelsnail import PixelSNAIL, PixelSNAILConfig


from engine.models.transformer import CausalTransformer, CausalTransformerConfig
from engine.models.wavenet import WaveNet, WaveNetConfig


def tiny_wavenet(Q: int, K: int, H: int, W: int) -> WaveNet:
    torch.manual_seed(0)
    model = WaveNet(WaveNetConfig(quantization_levels=Q, residual_channels=6, skip_channels=8, head_channels=8,
                                  dilations=[1, 2, 4], cond_channels=K))
    return model.eval()


def _spread(model):
    """Random weights large enough that every conditional differs visibly from uniform."""
    torch.manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.5)
    return model.eval()


def tiny_made(Q: int, K: int, H: int, W: int) -> MADE:
    return _spread(MADE(MADEConfig(quantization_levels=Q, cond_channels=K, height=H, width=W, hidden_sizes=[9, 7])))


def tiny_pixelcnn(Q: int, K: int, H: int, W: int) -> PixelCNN:
    return _spread(PixelCNN(PixelCNNConfig(quantization_levels=Q, cond_channels=K, height=H, width=W, channels=6,
                                           residual_blocks=2, first_kernel=3, head_channels=7)))


def tiny_gated_pixelcnn(Q: int, K: int, H: int, W: int) -> GatedPixelCNN:
    return _spread(GatedPixelCNN(GatedPixelCNNConfig(quantization_levels=Q, cond_channels=K, height=H, width=W, channels=5,
                                                     layers=3, first_kernel=3, kernel=3, head_channels=7)))


def tiny_pixelsnail(Q: int, K: int, H: int, W: int) -> PixelSNAIL:
    """Weights of 0.3, not 0.5: larger ones saturate the attention's softmax (a one-hot choice)."""
    model = PixelSNAIL(PixelSNAILConfig(quantization_levels=Q, cond_channels=K, height=H, width=W, channels=6, blocks=2,
                                        residuals=1, key_channels=4))
    torch.manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.3)
    return model.eval()


def tiny_pixelcnnpp(Q: int, K: int, H: int, W: int) -> PixelCNNPlusPlus:
    """Weights of std 0.2, not 0.5: at 0.5 its ten layers give log-probs in the thousands, where float32
    rounding alone breaks the fast == naive tolerance (in float64 the two agree to 1e-9 either way)."""
    model = _spread(PixelCNNPlusPlus(PixelCNNPlusPlusConfig(quantization_levels=Q, cond_channels=K, height=H, width=W,
                                                            filters=4, resnets=1, stages=2, components=2)))
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(0.4)
    return model


def tiny_transformer(Q: int, K: int, H: int, W: int) -> CausalTransformer:
    return _spread(CausalTransformer(CausalTransformerConfig(quantization_levels=Q, cond_channels=K, height=H, width=W,
                                                             d_model=8, layers=2, heads=2, mlp_channels=12)))


def tiny_mixture(Q: int, K: int, H: int, W: int):
    """Two tiny WaveNets of different widths and receptive fields, weighted 0.6 / 0.4."""
    from engine.recipes.mixture import mixture_of

    torch.manual_seed(1)
    other = WaveNet(WaveNetConfig(quantization_levels=Q, residual_channels=4, skip_channels=6, head_channels=6,
                                  dilations=[1, 1, 2], cond_channels=K))
    return mixture_of([tiny_wavenet(Q, K, H, W), other], [0.6, 0.4])


TINY = {
    "wavenet": tiny_wavenet,
    "made": tiny_made,
    "pixelcnn": tiny_pixelcnn,
    "gated_pixelcnn": tiny_gated_pixelcnn,
    "pixelsnail": tiny_pixelsnail,
    "pixelcnnpp": tiny_pixelcnnpp,
    "mixture": tiny_mixture,
    "transformer": tiny_transformer,
}
