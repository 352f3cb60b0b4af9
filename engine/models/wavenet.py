"""WaveNet (van den Oord et al. 2016, "WaveNet: A Generative Model for Raw Audio"): stacked dilated
causal convolutions with gated units, residual and skip connections and a global condition.
Column t of the convolutions' output predicts the input at t+1; `log_probs` (the family interface,
engine/models/base.py) feeds a start token first, so its row t is p(x_t | x_<t, y)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import torch
import torch.nn as nn
import torch.nn.functional as F

from engine.encoding import one_hot
from engine.layers import GatedLayer
from engine.models.base import AutoregressiveModel, check_levels
from engine.models.wavenet_fast import FastState, start_fast


@dataclass
class WaveNetConfig:
    quantization_levels: int = 256  # Q
    residual_channels: int = 32
    skip_channels: int = 128
    head_channels: int = 128
    dilations: list[int] = field(default_factory=lambda: [1, 2, 4, 8, 16, 32])
    kernel_size: int = 2
    input_kernel_size: int = 3
    cond_channels: int = 0  # K; 0 = unconditional
    # Training only: the fraction of every layer's gated output dropped in the teacher-forced forward
    # (0 = off); the unrolled n-step steps and every inference path run without it.
    dropout: float = 0.0
    # Local conditioning (WaveNet's second kind of condition) on where the predicted value lies: with
    # [H, W], output column t gets learned per-layer biases for its row min(t // W, H - 1) and its
    # column t % W, summed (any number of axes works alike, the first one clamped). The position is a
    # function of t alone, known before any value is, so it adds no look-ahead. [] = off. A raster-
    # scanned image gives a WaveNet no other way to know where in a row it is: the first pixel of a
    # stroke and a blank margin look alike to it from the previous ~700 pixels.
    position_grid: list[int] = field(default_factory=list)
    # The level fed before x_0, so the model predicts x_0 too (row 0 of log_probs; MNIST). None: no start
    # token; the model reads a window from its first value, as a forecaster trained on crops of longer
    # signals does, and gives the first value no probability of its own (row 0 of log_probs is uniform).
    start_value: int | None = 0

    def __post_init__(self):
        ints = {
            "quantization_levels": 2,
            "residual_channels": 1,
            "skip_channels": 1,
            "head_channels": 1,
            "kernel_size": 1,
            "input_kernel_size": 1,
            "cond_channels": 0,
        }
        for name, low in ints.items():
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"WaveNetConfig.{name} must be an integer >= {low}, got {value!r}.")
        if not self.dilations or not all(isinstance(d, int) and d >= 1 for d in self.dilations):
            raise ValueError(f"WaveNetConfig.dilations must be a non-empty list of integers >= 1, got {self.dilations!r}.")
        self.dilations = list(self.dilations)
        if isinstance(self.dropout, bool) or not isinstance(self.dropout, (int, float)) or not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"WaveNetConfig.dropout must be a number in [0, 1) (0 = off), got {self.dropout!r}.")
        self.dropout = float(self.dropout)
        if not isinstance(self.position_grid, (list, tuple)) or not all(
                isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in self.position_grid):
            raise ValueError(f"WaveNetConfig.position_grid must be a list of integers >= 1 (e.g. [28, 28]; [] = off), got {self.position_grid!r}.")
        self.position_grid = list(self.position_grid)
        if self.start_value is not None and (not isinstance(self.start_value, int) or isinstance(self.start_value, bool)
                                             or not 0 <= self.start_value < self.quantization_levels):
            raise ValueError(f"WaveNetConfig.start_value must be a level in 0..{self.quantization_levels - 1} or null "
                             f"(no start token), got {self.start_value!r}.")

    @property
    def receptive_field(self) -> int:
        """R = 1 + (k_in - 1) + sum over dilated layers of (k - 1) * d."""
        return 1 + (self.input_kernel_size - 1) + sum((self.kernel_size - 1) * d for d in self.dilations)


class WaveNet(AutoregressiveModel):
    family_name = "WaveNet"
    family_paper = "van den Oord et al. 2016"
    family_summary = "dilated causal 1-D convolutions over the pixels in scan order; fast generation keeps a queue per layer"
    soft_inputs = True  # forward() takes relaxed one-hot columns: the n-step unrolled loss trains it

    def __init__(self, config: WaveNetConfig):
        super().__init__()
        self.config = config
        c = config
        C = c.residual_channels
        n = len(c.dilations)
        layers = [GatedLayer(c.quantization_levels, C, c.input_kernel_size, 1, c.cond_channels, residual=False, dropout=c.dropout)]
        layers += [GatedLayer(C, C, c.kernel_size, d, c.cond_channels, residual=True, last=i == n - 1, dropout=c.dropout)
                   for i, d in enumerate(c.dilations)]
        self.layers = nn.ModuleList(layers)
        self.skip = nn.Conv1d(C * len(layers), c.skip_channels, 1)
        self.head_hidden = nn.Conv1d(c.skip_channels, c.head_channels, 1)
        self.head_out = nn.Conv1d(c.head_channels, c.quantization_levels, 1)
        # position_grid: per axis a table (size, sum over layers of 2C) of pre-activation biases, zero at
        # the start so a model with positions starts out as the same model without them.
        self.position = nn.ParameterList([nn.Parameter(torch.zeros(n, sum(self.bias_widths))) for n in c.position_grid])

    def position_biases(self, columns: torch.Tensor) -> torch.Tensor | None:
        """Output column indices (any shape, int64) -> their position biases (..., sum of 2C over layers),
        layer by layer side by side; None when the model has no position_grid."""
        grid = self.config.position_grid
        if not grid:
            return None
        rest, total = columns, None
        for axis in reversed(range(len(grid))):
            index = rest.clamp(max=grid[0] - 1) if axis == 0 else rest % grid[axis]
            rest = rest // grid[axis]
            part = self.position[axis][index]
            total = part if total is None else total + part
        return total

    @property
    def bias_widths(self) -> list[int]:
        """Per layer the width (2C) of its pre-activation biases, as they lie side by side in position_biases."""
        return [layer.conv.out_channels for layer in self.layers]

    def _position_split(self, offset: int, length: int, device) -> list[torch.Tensor] | list[None]:
        """Per layer the (length, 2C) position biases of columns offset..offset+length-1, or Nones
        without a position_grid."""
        if not self.config.position_grid:
            return [None] * len(self.layers)
        columns = torch.arange(offset, offset + length, device=device)
        return list(self.position_biases(columns).split(self.bias_widths, dim=-1))

    @property
    def receptive_field(self) -> int:
        return self.config.receptive_field

    def architecture_note(self) -> str:
        return f"receptive field R = {self.receptive_field}"

    @classmethod
    def can_start_from(cls, start, config: WaveNetConfig) -> bool:
        """Whether the weights of a `start` model can start training a `config` model (train.init_from):
        the two are equal but for dropout (it has no weights) and a position_grid that `config` adds to a
        start without one (its tables start at zero, so the model starts out computing what `start` does)."""
        if not isinstance(start, WaveNetConfig):
            return False
        grid = config.position_grid if not start.position_grid else start.position_grid
        return replace(start, dropout=config.dropout, position_grid=grid) == config

    def input_sequence(self, levels: torch.Tensor) -> torch.Tensor:
        """Levels (B, N) -> the sequence (B, T) whose columns the convolutions read, column t predicting
        column t+1: the start token and then x_0..x_{N-1} (T = N+1), or the levels alone without one."""
        s = self.config.start_value
        if s is None:
            return levels.long()
        return torch.cat([torch.full((levels.shape[0], 1), s, dtype=torch.long, device=levels.device), levels.long()], dim=1)

    def log_probs(self, levels: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """Levels (B, N) -> log p(x_t | x_<t, y) (B, N, Q): one forward over the start token and
        x_0..x_{N-2}. Under torch.no_grad() the time-major inference path (`logits_from_levels`)."""
        if levels.dim() != 2:
            raise ValueError(f"levels must have shape (B, N), got {tuple(levels.shape)}.")
        inputs = self.input_sequence(levels)[:, :-1]
        B, Q = levels.shape[0], self.config.quantization_levels
        dtype = self.skip.weight.dtype
        if inputs.shape[1] == 0:
            logits = torch.zeros(B, 0, Q, dtype=dtype, device=levels.device)
        elif torch.is_grad_enabled():
            logits = self(one_hot(inputs, Q, dtype), cond).transpose(1, 2)
        else:
            logits = self.logits_from_levels(inputs, cond)
        out = F.log_softmax(logits, dim=-1)
        if self.config.start_value is None:  # nothing before x_0 to predict it from: uniform
            out = torch.cat([torch.full((B, min(1, levels.shape[1]), Q), -math.log(Q), dtype=dtype, device=levels.device), out], dim=1)
        return out

    def start(self, prefix: torch.Tensor, cond: torch.Tensor | None = None):
        """The fast generation state (Paine et al. 2016; engine/models/wavenet_fast.py) after prefix (B, T0)
        levels under cond (B, K): its log_probs (B, Q) are row T0 of `log_probs`."""
        check_levels(prefix, self.config.quantization_levels, "prefix")
        self.check_condition(cond)
        return start_fast(self, self.input_sequence(prefix), cond)

    def unroll_state(self, layer_inputs: list[torch.Tensor], logits: torch.Tensor, cond: torch.Tensor | None,
                     origins: torch.Tensor, steps: int | None = None):
        """The soft-inputs capability: a state standing at each origin of a teacher-forced forward
        (forward(..., return_layer_inputs=True)), rows b-major, whose step() takes (B, Q) soft columns
        and returns logits (B, Q): the fast generator's queues (Paine et al. 2016), primed from it."""
        return FastState.from_forward(self, layer_inputs, logits, cond, origins, steps=steps)

    def condition_biases(self, cond: torch.Tensor | None) -> list[torch.Tensor | None]:
        """cond (B, K) -> per layer (B, 2C) additive bias, or Nones when unconditional."""
        self.check_condition(cond)
        if self.config.cond_channels == 0:
            return [None] * len(self.layers)
        return [layer.cond(cond) for layer in self.layers]

    def check_condition(self, cond: torch.Tensor | None) -> None:
        if self.config.cond_channels == 0:
            if cond is not None:
                raise ValueError("This model is unconditional; pass condition=None.")
            return
        if cond is None:
            raise ValueError(f"This model needs a condition of {self.config.cond_channels} channels.")
        if cond.dim() != 2 or cond.shape[1] != self.config.cond_channels:
            raise ValueError(f"condition must have shape (B, {self.config.cond_channels}), got {tuple(cond.shape)}.")

    def head(self, z_all: torch.Tensor) -> torch.Tensor:
        """Concatenated gated outputs (B, C*L, T) -> logits (B, Q, T)."""
        h = F.relu(self.skip(z_all))
        return self.head_out(F.relu(self.head_hidden(h)))

    def forward(
        self, x: torch.Tensor, cond: torch.Tensor | None = None, return_layer_inputs: bool = False, offset: int = 0
    ):
        """x (B, Q, T) one-hot (or soft) inputs, cond (B, K) -> logits (B, Q, T). offset: the absolute
        index of column 0 (a window cut from a longer sequence), which only a position_grid reads.

        With return_layer_inputs, also returns every layer's input (B, C_l, T): what the fast
        generator's queues hold (Paine et al. 2016), so a forward pass can prime them.
        """
        if x.dim() != 3 or x.shape[1] != self.config.quantization_levels:
            raise ValueError(f"input must have shape (B, {self.config.quantization_levels}, T), got {tuple(x.shape)}.")
        biases = self.condition_biases(cond)
        positions = self._position_split(offset, x.shape[2], x.device)
        h, zs, inputs = x, [], []
        for layer, bias, pos in zip(self.layers, biases, positions):
            inputs.append(h)
            if bias is not None:
                bias = bias.unsqueeze(-1)  # (B, 2C, 1)
            if pos is not None:
                bias = pos.t()[None] if bias is None else bias + pos.t()[None]  # (B or 1, 2C, T)
            h, z = layer(h, bias)
            zs.append(z)
        logits = self.head(torch.cat(zs, dim=1))
        return (logits, inputs) if return_layer_inputs else logits

    @torch.no_grad()
    def logits_from_levels(self, levels: torch.Tensor, cond: torch.Tensor | None = None, offset: int = 0) -> torch.Tensor:
        """Inference fast path: input levels (B, T) ints -> logits (B, T, Q), equal to
        `forward(one_hot(levels), cond, offset=offset).transpose(1, 2)` up to float rounding.

        Time-major layout, so every 1x1 and dilated convolution is a plain matrix product over B*T rows
        (no padding copies, no slow conv kernels); the input layer is an embedding lookup (its input is
        one-hot); tanh(f) is computed as 2*sigmoid(2f) - 1 so one sigmoid serves both gate halves, with
        the factors folded into the weights; every layer writes its gated output straight into the
        buffer the skip projection reads. About 2-3x faster than `forward` on a CPU (bench/mnist.py).
        """
        if levels.dim() != 2:
            raise ValueError(f"levels must have shape (B, T), got {tuple(levels.shape)}.")
        B, T = levels.shape
        c = self.config
        C, L = c.residual_channels, len(self.layers)
        dtype = self.skip.weight.dtype
        levels = levels.long()
        biases = self.condition_biases(cond)
        positions = self._position_split(offset, T, levels.device)
        N = B * T
        zbuf = torch.empty(N, C * L, dtype=dtype, device=levels.device)  # every layer's gated output, side by side
        scale = torch.ones(2 * C, dtype=dtype, device=levels.device)
        scale[:C] = 2.0  # pre-activation of the tanh half doubled: tanh(f) = 2 sigmoid(2f) - 1
        h = None  # the current layer's input, (N, C)
        for i, (layer, cond_bias, pos) in enumerate(zip(self.layers, biases, positions)):
            w = layer.conv.weight * scale[:, None, None]  # (2C, C_in, k); tap j reads x[t - (k-1-j) d]
            bias = layer.conv.bias * scale
            bias = bias if cond_bias is None else bias + cond_bias * scale  # (2C,) or (B, 2C)
            k, d = w.shape[2], layer.conv.dilation[0]
            taps = torch.cat([w[:, :, j].t() for j in reversed(range(k))], dim=1)  # (C_in, k*2C), newest tap first
            if i == 0:  # one-hot input: the product is a row lookup
                prod = F.embedding(levels.reshape(N), taps)
            else:
                prod = torch.mm(h, taps)
            prod3 = prod.view(B, T, k * 2 * C)
            a = prod3[:, :, :2 * C]
            a += bias.unsqueeze(1) if bias.dim() == 2 else bias
            if pos is not None:
                a += pos * scale  # (T, 2C): the same for every row
            for back in range(1, k):  # older taps: add the product computed `back*d` rows earlier
                shift = back * d
                if shift < T:
                    a[:, shift:] += prod3[:, :-shift, back * 2 * C:(back + 1) * 2 * C]
            gates = torch.sigmoid(a).view(N, 2 * C)
            z = zbuf[:, i * C:(i + 1) * C]
            torch.mul(gates[:, :C].sub_(0.5), gates[:, C:], out=z)  # = tanh(f) * sigmoid(g) / 2
            if layer.res is not None:
                out = torch.addmm(layer.res.bias, z, 2.0 * layer.res.weight[:, :, 0].t())
                h = out.add_(h) if layer.residual else out
        hid = F.relu(torch.addmm(self.skip.bias, zbuf, 2.0 * self.skip.weight[:, :, 0].t()))
        hid = F.relu(torch.addmm(self.head_hidden.bias, hid, self.head_hidden.weight[:, :, 0].t()))
        return torch.addmm(self.head_out.bias, hid, self.head_out.weight[:, :, 0].t()).view(B, T, -1)
