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

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        h = self.conv(F.relu(self.down(F.relu(x))))
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

    def image_logits(self, image: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        """Level images (B, H', W') (the whole image or a window of it), cond (B, K) checked -> logits (B, Q, H', W')."""
        x = F.one_hot(image, self.config.quantization_levels).permute(0, 3, 1, 2).to(self.head_out.weight.dtype)
        h = self.input(x)
        if cond is not None:
            h = h + self.input_cond(cond)[:, :, None, None]
        for block in self.blocks:
            h = block(h, cond)
        return self.head_out(F.relu(self.head_hidden(F.relu(h))))

    @property
    def reach(self) -> int:
        """How far a prediction reads: rows above, and columns to either side (first kernel plus one per block)."""
        return self.config.first_kernel // 2 + self.config.residual_blocks

    def log_probs(self, levels: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """levels (B, N) in raster order, cond (B, K) -> (B, N, Q): row t = log p(x_t | x_<t, y)."""
        return F.log_softmax(self.logits(levels, cond), dim=-1)

    def start(self, prefix: torch.Tensor, cond: torch.Tensor | None = None) -> "WindowState":
        return WindowState(self, prefix, cond)

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


class WindowState:
    """PixelCNN's generation state: the naive state's work (re-run the network for every pixel), but on
    the window of the image the next pixel's prediction reads only: rows i-R .. i and columns
    j-R .. j+R around pixel (i, j), R = `reach`. Exact: a value inside the window is wrong only where
    its own field crosses the window's edge, and none of those reach the pixel's output. On 28x28 with
    R = 9 that is a 10x19 window instead of the image (bench/fast_states.py measures it); a PixelCNN
    has no cheaper exact incremental form in this project."""

    def __init__(self, model: PixelCNN, prefix: torch.Tensor, cond: torch.Tensor | None):
        if prefix.dim() != 2:
            raise ValueError(f"prefix must have shape (B, T), got {tuple(prefix.shape)}.")
        c = model.config
        N = model.sequence_length
        if prefix.shape[1] > N:
            raise ValueError(f"prefix has {prefix.shape[1]} values but the image has only {N} pixels.")
        self.model, self.t = model, prefix.shape[1]
        image = torch.zeros(prefix.shape[0], N, dtype=torch.long, device=model.head_out.weight.device)
        image[:, :self.t] = prefix.long()
        image, self.cond = model._check(image, cond)
        self.image = image.view(-1, c.height, c.width)
        self.log_probs = self._next()

    @torch.no_grad()
    def _next(self) -> torch.Tensor | None:
        m = self.model
        if self.t >= m.sequence_length:
            return None
        i, j = divmod(self.t, m.config.width)
        R = m.reach
        top, left = max(0, i - R), max(0, j - R)
        window = self.image[:, top:i + 1, left:j + R + 1]
        return F.log_softmax(m.image_logits(window, self.cond)[:, :, i - top, j - left], dim=-1)

    def step(self, levels: torch.Tensor) -> torch.Tensor | None:
        m = self.model
        if self.t >= m.sequence_length:
            raise ValueError("The image is complete: there is no next pixel to feed.")
        i, j = divmod(self.t, m.config.width)
        self.image[:, i, j] = levels.long().view(-1)
        self.t += 1
        self.log_probs = self._next()
        return self.log_probs

    def reorder(self, index: torch.Tensor) -> "WindowState":
        self.image = self.image.index_select(0, index)
        if self.cond is not None:
            self.cond = self.cond.index_select(0, index)
        self.log_probs = None if self.log_probs is None else self.log_probs.index_select(0, index)
        return self
