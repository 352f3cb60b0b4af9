"""PixelCNN (van den Oord, Kalchbrenner and Kavukcuoglu 2016, "Pixel Recurrent Neural Networks"):
masked 2-D convolutions over the image, a 7x7 mask-A convolution (a pixel does not see itself) and
then residual blocks whose 3x3 convolutions use mask B, a class condition added in every block, and
a softmax over Q levels per pixel, in raster order.

Its blind spot is kept on purpose, because it is what the paper teaches: stacked masked 3x3
convolutions grow the receptive field up and to the left but never reach the pixels above and to the
right beyond the first kernel's reach; `dependency_map` says exactly which pixels a prediction reads."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from engine.layers import MaskedConv2d
from engine.models.base import AutoregressiveModel, check_image_inputs


@dataclass
class PixelCNNConfig:
    quantization_levels: int = 2  # Q
    cond_channels: int = 0  # K; 0 = unconditional
    height: int = 28
    width: int = 28
    channels: int = 64  # C, the width of the residual stream (the blocks' 3x3 convolutions run at C/2)
    residual_blocks: int = 6
    first_kernel: int = 7
    head_channels: int = 64

    def __post_init__(self):
        ints = {"quantization_levels": 2, "cond_channels": 0, "height": 1, "width": 1, "channels": 2,
                "residual_blocks": 0, "first_kernel": 1, "head_channels": 1}
        for name, low in ints.items():
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"PixelCNNConfig.{name} must be an integer >= {low}, got {value!r}.")
        if self.first_kernel % 2 != 1:
            raise ValueError(f"PixelCNNConfig.first_kernel must be odd, got {self.first_kernel}.")


class ResidualBlock(nn.Module):
    """ReLU -> 1x1 (C -> C/2) -> ReLU -> 3x3 mask B (+ condition) -> ReLU -> 1x1 (C/2 -> C), added to the input."""

    def __init__(self, channels: int, cond_channels: int):
        super().__init__()
        half = channels // 2
        self.down = nn.Conv2d(channels, half, 1)
        self.conv = MaskedConv2d("B", half, half, 3)
        self.up = nn.Conv2d(half, channels, 1)
        self.cond = nn.Linear(cond_channels, half, bias=False) if cond_channels else None

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None, conv_inputs: list | None = None) -> torch.Tensor:
        a = F.relu(self.down(F.relu(x)))
        if conv_inputs is not None:
            conv_inputs.append(a)
        h = self.conv(a)
        if cond is not None:
            h = h + self.cond(cond)[:, :, None, None]
        return x + self.up(F.relu(h))


class PixelCNN(AutoregressiveModel):
    family_name = "PixelCNN"
    family_summary = ("masked 2-D convolutions over the image (mask A, then residual blocks with mask B); "
                      "it has a blind spot above and to the right of each pixel")
    family_paper = "van den Oord et al. 2016a"

    def __init__(self, config: PixelCNNConfig):
        super().__init__()
        self.config = c = config
        self.input = MaskedConv2d("A", c.quantization_levels, c.channels, c.first_kernel)
        self.input_cond = nn.Linear(c.cond_channels, c.channels, bias=False) if c.cond_channels else None
        self.blocks = nn.ModuleList([ResidualBlock(c.channels, c.cond_channels) for _ in range(c.residual_blocks)])
        self.head_hidden = nn.Conv2d(c.channels, c.head_channels, 1)
        self.head_out = nn.Conv2d(c.head_channels, c.quantization_levels, 1)

    @property
    def sequence_length(self) -> int:
        return self.config.height * self.config.width

    def architecture_note(self) -> str:
        reach = self.reach
        return (f"a pixel reads up to {reach} rows above it and {reach} pixels to its left, but in the rows above only "
                f"as far right as the first kernel reaches ({self.config.first_kernel // 2}), growing by one column per row up: the blind spot")

    def _check(self, levels: torch.Tensor, cond: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        return check_image_inputs(self.config, levels, cond, self.head_out.weight.dtype)

    def logits(self, levels: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """levels (B, N), cond (B, K) -> logits (B, N, Q)."""
        levels, cond = self._check(levels, cond)
        c = self.config
        return self.image_logits(levels.view(-1, c.height, c.width), cond).permute(0, 2, 3, 1).reshape(levels.shape[0], -1, c.quantization_levels)

    def image_logits(self, image: torch.Tensor, cond: torch.Tensor | None, conv_inputs: list | None = None) -> torch.Tensor:
        """Level images (B, H', W') (the whole image or a window of it), cond (B, K) checked -> logits (B, Q, H', W').
        conv_inputs, when a list, receives each block's masked-convolution input (B, C/2, H', W') (the fast state's cache)."""
        x = F.one_hot(image, self.config.quantization_levels).permute(0, 3, 1, 2).to(self.head_out.weight.dtype)
        h = self.input(x)
        if cond is not None:
            h = h + self.input_cond(cond)[:, :, None, None]
        for block in self.blocks:
            h = block(h, cond, conv_inputs)
        return self.head_out(F.relu(self.head_hidden(F.relu(h))))

    @property
    def reach(self) -> int:
        """How far a prediction reads: rows above, and columns to either side (first kernel plus one per block)."""
        return self.config.first_kernel // 2 + self.config.residual_blocks

    def log_probs(self, levels: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """levels (B, N) in raster order, cond (B, K) -> (B, N, Q): row t = log p(x_t | x_<t, y)."""
        return F.log_softmax(self.logits(levels, cond), dim=-1)

    def start(self, prefix: torch.Tensor, cond: torch.Tensor | None = None) -> "CachedState":
        return CachedState(self, prefix, cond)

    def dependency_map(self, i: int, j: int) -> torch.Tensor:
        """The pixels the prediction at (i, j) reads, as an (H, W) bool map: the documented receptive
        field. It is the composition of the masks: the 1x1 convolutions keep a position, each 3x3 mask-B
        kernel adds its taps, the first_kernel mask-A kernel adds its taps (not the centre). Everything in
        it lies before (i, j) in raster order; the pixels above and to the right beyond the first
        kernel's reach are not in it, though they come earlier (the blind spot)."""
        c = self.config
        reach = torch.zeros(c.height, c.width, dtype=torch.bool)
        reach[i, j] = True
        for mask in [b.conv.mask for b in self.blocks] + [self.input.mask]:
            k = mask.shape[0] // 2
            # out (a, b) reads in (a + di - k, b + dj - k) where mask[di, dj]: a correlation with the flipped mask
            grown = F.conv2d(reach.float()[None, None], mask.cpu().float().flip(0, 1)[None, None], padding=k)[0, 0] > 0
            reach = grown
        return reach


class CachedState:
    """PixelCNN's fast generation state, per call, in the spirit of Ramachandran et al. 2017: every
    layer's output at a pixel is computed once, when that pixel comes, and kept. A masked convolution at
    pixel (i, j) reads its input only at positions before (i, j) (the row above up to j + 1, and row i up
    to j), which were all computed earlier, so one pixel costs one small matrix product per masked
    convolution (its taps over the cached inputs) plus the 1x1 convolutions at that pixel: about
    3 + 4 * residual_blocks products instead of a pass over the image. Caches, channels last and
    zero-padded like the convolutions: the one-hot input (B, H + k, W + 2k, Q) for the first kernel
    (k = first_kernel // 2) and each block's masked-convolution input (B, H + 1, W + 2, C/2). A prefix is
    primed by one full forward. Equal to the full forward up to float rounding."""

    def __init__(self, model: PixelCNN, prefix: torch.Tensor, cond: torch.Tensor | None):
        if prefix.dim() != 2:
            raise ValueError(f"prefix must have shape (B, T), got {tuple(prefix.shape)}.")
        c = model.config
        N, H, W = model.sequence_length, c.height, c.width
        B, T0 = prefix.shape
        if T0 > N:
            raise ValueError(f"prefix has {T0} values but the image has only {N} pixels.")
        self.model, self.t = model, T0
        device = model.head_out.weight.device
        padded = torch.zeros(B, N, dtype=torch.long, device=device)
        padded[:, :T0] = prefix.long()
        levels, self.cond = model._check(padded, cond)
        k = c.first_kernel // 2
        with torch.no_grad():
            rows_in = lambda conv, rows: (conv.weight * conv.mask)[:, :, :rows].permute(2, 3, 1, 0).reshape(-1, conv.weight.shape[0])
            self.w_input = (rows_in(model.input, k + 1), model.input.bias)
            self.w_blocks = [(b.down.weight[:, :, 0, 0].t(), b.down.bias, rows_in(b.conv, 2), b.conv.bias,
                              b.up.weight[:, :, 0, 0].t(), b.up.bias) for b in model.blocks]
            self.w_head = (model.head_hidden.weight[:, :, 0, 0].t(), model.head_hidden.bias,
                           model.head_out.weight[:, :, 0, 0].t(), model.head_out.bias)
            self.c_input = model.input_cond(self.cond) if self.cond is not None else None
            self.c_blocks = [b.cond(self.cond) if self.cond is not None else None for b in model.blocks]
            image = levels.view(B, H, W)
            conv_inputs = []
            model.image_logits(image, self.cond, conv_inputs)  # one forward primes every cache (right before T0)
            dtype = model.head_out.weight.dtype
            self.x = torch.zeros(B, H + k, W + 2 * k, c.quantization_levels, dtype=dtype, device=device)
            self.x[:, k:, k:k + W] = F.one_hot(image, c.quantization_levels).to(dtype)
            self.a = [F.pad(a.permute(0, 2, 3, 1), (0, 0, 1, 1, 1, 0)).contiguous() for a in conv_inputs]
            self.log_probs = self._pixel() if T0 < N else None

    def _pixel(self) -> torch.Tensor:
        """Every layer at the current pixel (i, j) from the caches -> log-probs (B, Q); fills the blocks' caches at (i, j)."""
        i, j = divmod(self.t, self.model.config.width)
        k = self.model.config.first_kernel // 2
        B = self.x.shape[0]
        w, b = self.w_input
        h = torch.addmm(b, self.x[:, i:i + k + 1, j:j + 2 * k + 1].reshape(B, -1), w)  # future taps are masked to 0
        if self.c_input is not None:
            h = h + self.c_input
        for a_cache, (w_down, b_down, w_conv, b_conv, w_up, b_up), c_block in zip(self.a, self.w_blocks, self.c_blocks):
            a_cache[:, i + 1, j + 1] = F.relu(torch.addmm(b_down, F.relu(h), w_down))
            g = torch.addmm(b_conv, a_cache[:, i:i + 2, j:j + 3].reshape(B, -1), w_conv)
            if c_block is not None:
                g = g + c_block
            h = h + torch.addmm(b_up, F.relu(g), w_up)
        w1, b1, w2, b2 = self.w_head
        return F.log_softmax(torch.addmm(b2, F.relu(torch.addmm(b1, F.relu(h), w1)), w2), dim=-1)

    @torch.no_grad()
    def step(self, levels: torch.Tensor) -> torch.Tensor | None:
        m = self.model
        if self.t >= m.sequence_length:
            raise ValueError("The image is complete: there is no next pixel to feed.")
        i, j = divmod(self.t, m.config.width)
        k = m.config.first_kernel // 2
        self.x[:, i + k, j + k] = F.one_hot(levels.long().view(-1).to(self.x.device), m.config.quantization_levels).to(self.x.dtype)
        self.t += 1
        self.log_probs = self._pixel() if self.t < m.sequence_length else None
        return self.log_probs

    def reorder(self, index: torch.Tensor) -> "CachedState":
        self.x = self.x.index_select(0, index)
        self.a = [a.index_select(0, index) for a in self.a]
        if self.cond is not None:
            self.cond = self.cond.index_select(0, index)
            self.c_input = self.c_input.index_select(0, index)
            self.c_blocks = [cb.index_select(0, index) for cb in self.c_blocks]
        self.log_probs = None if self.log_probs is None else self.log_probs.index_select(0, index)
        return self
