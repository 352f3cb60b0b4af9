"""Causal building blocks for WaveNet (van den Oord et al. 2016): a left-padded dilated 1-D
convolution and the gated (tanh x sigmoid) residual unit with a global condition."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class CausalConv1d(nn.Conv1d):
    """1-D convolution whose output at t sees inputs t-(k-1)d .. t only: (B, C_in, T) -> (B, C_out, T)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, dilation: int = 1):
        super().__init__(in_channels, out_channels, kernel_size, dilation=dilation)
        self.left_pad = (kernel_size - 1) * dilation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, (self.left_pad, 0)))

    def flat_weight(self) -> torch.Tensor:
        """Weight as (C_out, k*C_in), matching `torch.cat([x_{t-(k-1)d}, ..., x_t], dim=1)`."""
        return self.weight.permute(0, 2, 1).reshape(self.out_channels, -1)


class GatedLayer(nn.Module):
    """Dilated causal conv -> (+ condition) -> tanh * sigmoid -> 1x1 residual projection.

    The skip projection is not here: the model applies one 1x1 conv to the concatenation of every
    layer's gated output, which equals the sum of per-layer skip convs and is ~3x faster on CPU.
    """

    def __init__(
        self,
        in_channels: int,
        channels: int,
        kernel_size: int,
        dilation: int,
        cond_channels: int,
        residual: bool,
        last: bool = False,
        dropout: float = 0.0,
    ):
        super().__init__()
        self.channels = channels
        self.dropout = dropout  # on the gated output in training mode only; inference paths never drop
        self.residual = residual
        self.conv = CausalConv1d(in_channels, 2 * channels, kernel_size, dilation)
        self.cond = nn.Linear(cond_channels, 2 * channels, bias=False) if cond_channels else None
        # The last layer's output feeds only the skip path: it has no residual projection.
        self.res = None if last else nn.Conv1d(channels, channels, 1)

    @property
    def queue_size(self) -> int:
        return self.conv.left_pad

    def gate(self, a: torch.Tensor, cond_bias: torch.Tensor | None) -> torch.Tensor:
        """Pre-activation (B, 2C, ...) -> gated output (B, C, ...)."""
        if cond_bias is not None:
            a = a + cond_bias
        f, g = a.split(self.channels, dim=1)
        return torch.tanh(f) * torch.sigmoid(g)

    def forward(self, x: torch.Tensor, cond_bias: torch.Tensor | None) -> tuple[torch.Tensor | None, torch.Tensor]:
        """x (B, C_in, T), cond_bias (B, 2C, 1) or None -> (next input (B, C, T) or None for the last
        layer, gated z (B, C, T))."""
        z = self.gate(self.conv(x), cond_bias)
        if self.dropout and self.training:
            z = F.dropout(z, self.dropout, training=True)
        if self.res is None:
            return None, z
        out = self.res(z)
        return (out + x if self.residual else out), z


class MaskedConv2d(nn.Conv2d):
    """PixelCNN's masked 2-D convolution (van den Oord et al. 2016a), 'same' padding: the output at
    (i, j) reads the rows above i and, in row i, the columns left of j, plus (j) itself for mask 'B'
    (mask 'A', the first layer, excludes it: a pixel never sees its own value). (B, C_in, H, W) ->
    (B, C_out, H, W). Channels are not split by colour: these images have one."""

    def __init__(self, mask_type: str, in_channels: int, out_channels: int, kernel_size: int):
        if mask_type not in ("A", "B") or kernel_size % 2 != 1:
            raise ValueError(f"MaskedConv2d needs mask 'A' or 'B' and an odd kernel size, got {mask_type!r}, {kernel_size}.")
        super().__init__(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        c = kernel_size // 2
        mask = torch.zeros(kernel_size, kernel_size)
        mask[:c] = 1
        mask[c, :c + (mask_type == "B")] = 1
        self.register_buffer("mask", mask, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)
