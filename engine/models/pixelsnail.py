"""PixelSNAIL (Chen, Mishra, Rohaninejad and Abbeel 2018, "PixelSNAIL: An Improved Autoregressive
Generative Model"): blocks of causal gated residual convolutions (a down-shifted and down-right-shifted
input layer, then 2x2 down-right-shifted kernels, as in PixelCNN++) interleaved with causal
self-attention, whose queries come from the features and whose keys and values come from the features,
the input and a positional encoding; the class condition is added in every residual unit, and a
softmax over Q levels per pixel in raster order.

The convolutions alone reach only up and to the left (a blind spot above and to the right, as in the
original's single stream); the attention reads every earlier pixel, so the model has none. The
attention is strictly causal: the key and value at pixel s carry x_s itself, so pixel t may read only
s < t. Pixel 0 then has nothing to read: its attention output is zero, not a softmax over a fully
masked row (uniform weights or NaN, a known bug in several public versions)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from engine.models.base import AutoregressiveModel, check_image_inputs


@dataclass
class PixelSNAILConfig:
    quantization_levels: int = 2  # Q
    cond_channels: int = 0  # K; 0 = unconditional
    height: int = 28
    width: int = 28
    channels: int = 32  # C, the residual stream; the attention's values have C // 2
    blocks: int = 2  # each: `residuals` gated convolutional units, then one attention
    residuals: int = 2
    key_channels: int = 16  # the queries' and keys' size (one head)
    dropout: float = 0.0  # in every residual unit, training only

    def __post_init__(self):
        ints = {"quantization_levels": 2, "cond_channels": 0, "height": 1, "width": 1, "channels": 2, "blocks": 1,
                "residuals": 0, "key_channels": 1}
        for name, low in ints.items():
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"PixelSNAILConfig.{name} must be an integer >= {low}, got {value!r}.")
        if not isinstance(self.dropout, (int, float)) or isinstance(self.dropout, bool) or not 0 <= self.dropout < 1:
            raise ValueError(f"PixelSNAILConfig.dropout must be a number in [0, 1), got {self.dropout!r}.")


def concat_elu(x: torch.Tensor) -> torch.Tensor:
    """(B, C, ...) -> (B, 2C, ...): elu of x and of -x, PixelCNN++'s nonlinearity (zero stays zero)."""
    return F.elu(torch.cat([x, -x], dim=1))


def down_right_pad(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, H+1, W+1), a zero row above and a zero column to the left: a 2x2 kernel
    over it puts at (i, j) what it reads at rows i-1..i, columns j-1..j."""
    return F.pad(x, (1, 0, 1, 0))


class GatedResidual(nn.Module):
    """PixelCNN++'s gated residual unit: x + a * sigmoid(b), with (a, b) = conv2(concat_elu(conv1(
    concat_elu(x)) + nin(concat_elu(aux)))) + condition. `kernel` 2 is the 2x2 down-right-shifted
    convolution (it reads rows i-1..i, columns j-1..j: a pixel's own features and earlier ones), 1 a
    network-in-network (1x1)."""

    def __init__(self, channels: int, kernel: int, cond_channels: int, aux_channels: int = 0, dropout: float = 0.0):
        super().__init__()
        C = channels
        self.kernel, self.dropout = kernel, dropout
        self.conv1 = nn.Conv2d(2 * C, C, kernel)
        self.aux = nn.Conv2d(2 * aux_channels, C, 1) if aux_channels else None
        self.conv2 = nn.Conv2d(2 * C, 2 * C, kernel)
        self.cond = nn.Linear(cond_channels, 2 * C, bias=False) if cond_channels else None
        with torch.no_grad():  # the unit starts near the identity (the original's init_scale=0.1)
            self.conv2.weight.mul_(0.1)
            self.conv2.bias.zero_()

    def _conv(self, conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
        return conv(down_right_pad(x) if self.kernel == 2 else x)

    def forward(self, x: torch.Tensor, aux: torch.Tensor | None, cond: torch.Tensor | None,
                trace: list | None = None) -> torch.Tensor:
        """x (B, C, H, W), aux (B, C_aux, H, W) or None, cond (B, K) -> (B, C, H, W). `trace` collects
        the two convolutions' inputs (what the fast state caches)."""
        a1 = concat_elu(x)
        c1 = self._conv(self.conv1, a1)
        if self.aux is not None:
            c1 = c1 + self.aux(concat_elu(aux))
        a2 = F.dropout(concat_elu(c1), self.dropout, self.training)
        c2 = self._conv(self.conv2, a2)
        if cond is not None:
            c2 = c2 + self.cond(cond)[:, :, None, None]
        if trace is not None:
            trace.append((a1, a2))
        a, b = c2.chunk(2, dim=1)
        return x + a * torch.sigmoid(b)


def attention_mask(N: int, dtype: torch.dtype, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """-> (bias (N, N), keep (N, 1)): bias is 0 where row t may read column s (s < t, strictly) and -inf
    elsewhere, except row 0, which may read nothing and gets a finite row of zeros instead (a softmax
    over a row of -inf is NaN); keep is 0 for row 0 and 1 for the others, and zeroes that row's output."""
    allowed = torch.ones(N, N, dtype=torch.bool, device=device).tril(-1)
    bias = torch.zeros(N, N, dtype=dtype, device=device).masked_fill(~allowed, float("-inf"))
    bias[0] = 0.0
    return bias, allowed.any(dim=1, keepdim=True).to(dtype)


def causal_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """query, key (B, N, D), value (B, N, V) -> (B, N, V): row t is the softmax-weighted mean of the
    values at s < t (strictly before t), and exactly zero for t = 0, whose row has nothing to attend
    to: its weights are multiplied by zero, so its output and its gradients to every pixel are zero."""
    bias, keep = attention_mask(query.shape[1], query.dtype, query.device)
    return F.scaled_dot_product_attention(query, key, value, attn_mask=bias) * keep


class AttentionBlock(nn.Module):
    """PixelSNAIL's attention over the residual stream `ul` (B, C, H, W): keys and values from a 1x1
    gated unit over (input x, ul, position), the query from one over (ul, position); the attention's
    output enters a last 1x1 gated unit as its auxiliary input."""

    def __init__(self, c: PixelSNAILConfig):
        super().__init__()
        C, Q, K, D = c.channels, c.quantization_levels, c.cond_channels, c.key_channels
        self.key_channels, self.value_channels = D, C // 2
        self.kv_res = GatedResidual(Q + C + 2, 1, K, dropout=c.dropout)
        self.kv_out = nn.Conv2d(Q + C + 2, D + C // 2, 1)
        self.q_res = GatedResidual(C + 2, 1, K, dropout=c.dropout)
        self.q_out = nn.Conv2d(C + 2, D, 1)
        self.out_res = GatedResidual(C, 1, K, aux_channels=C // 2, dropout=c.dropout)

    def keys_values(self, x: torch.Tensor, ul: torch.Tensor, position: torch.Tensor, cond) -> torch.Tensor:
        """x (B, Q, ...) one-hot, ul (B, C, ...), position (B, 2, ...) -> keys and values (B, D + C/2, ...)."""
        return self.kv_out(self.kv_res(torch.cat([x, ul, position], dim=1), None, cond))

    def query(self, ul: torch.Tensor, position: torch.Tensor, cond) -> torch.Tensor:
        return self.q_out(self.q_res(torch.cat([ul, position], dim=1), None, cond))

    def forward(self, x, ul, position, cond, trace: list | None = None) -> torch.Tensor:
        """x (B, Q, H, W), ul (B, C, H, W), position (B, 2, H, W) -> ul (B, C, H, W); `trace` collects
        the keys and values (B, N, D + C/2)."""
        B, C, H, W = ul.shape
        kv = self.keys_values(x, ul, position, cond).flatten(2).transpose(1, 2)  # (B, N, D + V)
        q = self.query(ul, position, cond).flatten(2).transpose(1, 2).contiguous()
        D = self.key_channels
        mixed = causal_attention(q, kv[..., :D].contiguous(), kv[..., D:].contiguous()).transpose(1, 2).reshape(B, -1, H, W)
        if trace is not None:
            trace.append(kv)
        return self.out_res(ul, mixed, cond)


class PixelSNAIL(AutoregressiveModel):
    family_name = "PixelSNAIL"
    family_summary = ("gated causal convolutions interleaved with causal self-attention over every earlier pixel; "
                      "fast generation caches the convolutions' rows and the attention's keys and values")
    family_paper = "Chen et al. 2018"

    def __init__(self, config: PixelSNAILConfig):
        super().__init__()
        self.config = c = config
        C, Q = c.channels, c.quantization_levels
        # the input layer reads the one-hot levels plus a channel of ones (image, not padding)
        self.input_down = nn.Conv2d(Q + 1, C, (1, 3))  # the row above, columns j-1..j+1
        self.input_right = nn.Conv2d(Q + 1, C, (2, 1))  # rows i-1..i, column j-1
        self.residuals = nn.ModuleList([GatedResidual(C, 2, c.cond_channels, dropout=c.dropout)
                                        for _ in range(c.blocks * c.residuals)])
        self.attention = nn.ModuleList([AttentionBlock(c) for _ in range(c.blocks)])
        self.head = nn.Conv2d(C, Q, 1)

    @property
    def sequence_length(self) -> int:
        return self.config.height * self.config.width

    def architecture_note(self) -> str:
        c = self.config
        return (f"{c.blocks} blocks of {c.residuals} gated 2x2 convolutions and one causal attention (1 head, keys of "
                f"{c.key_channels}): every pixel reads every earlier pixel, no blind spot")

    def _check(self, levels: torch.Tensor, cond: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        return check_image_inputs(self.config, levels, cond, self.head.weight.dtype)

    def position(self, B: int) -> torch.Tensor:
        """The positional encoding (B, 2, H, W): row and column, centred and scaled to [-1/2, 1/2)."""
        c = self.config
        w = self.head.weight
        rows = (torch.arange(c.height, dtype=w.dtype, device=w.device) - c.height / 2) / c.height
        cols = (torch.arange(c.width, dtype=w.dtype, device=w.device) - c.width / 2) / c.width
        return torch.stack([rows[:, None].expand(-1, c.width), cols[None, :].expand(c.height, -1)])[None].expand(B, -1, -1, -1)

    def one_hot(self, image: torch.Tensor) -> torch.Tensor:
        """Levels (B, H, W) -> (B, Q, H, W)."""
        return F.one_hot(image, self.config.quantization_levels).permute(0, 3, 1, 2).to(self.head.weight.dtype)

    def features(self, levels: torch.Tensor, cond: torch.Tensor | None, trace: dict | None = None) -> torch.Tensor:
        """Checked levels (B, N), cond (B, K) -> the last residual stream (B, C, H, W). `trace` ({"maps": [],
        "keys_values": []}) collects, in order, each convolutional unit's two convolution inputs and each
        attention block's keys and values (B, N, D + C/2): what the fast state caches."""
        c = self.config
        B = levels.shape[0]
        x = self.one_hot(levels.view(B, c.height, c.width))
        x_pad = torch.cat([x, torch.ones_like(x[:, :1])], dim=1)
        down = self.input_down(F.pad(x_pad, (1, 1, 0, 0)))  # at (i, j): row i, columns j-1..j+1
        right = self.input_right(F.pad(x_pad, (0, 0, 1, 0)))  # at (i, j): rows i-1..i, column j
        ul = F.pad(down, (0, 0, 1, 0))[:, :, :-1] + F.pad(right, (1, 0))[..., :-1]  # shifted down / right by one
        position = self.position(B)
        for b, attention in enumerate(self.attention):
            for residual in self.residuals[b * c.residuals:(b + 1) * c.residuals]:
                ul = residual(ul, None, cond, None if trace is None else trace["maps"])
            ul = attention(x, ul, position, cond, None if trace is None else trace["keys_values"])
        return ul

    def log_probs(self, levels: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """levels (B, N) in raster order, cond (B, K) -> (B, N, Q): row t = log p(x_t | x_<t, y)."""
        levels, cond = self._check(levels, cond)
        logits = self.head(F.elu(self.features(levels, cond)))
        return F.log_softmax(logits.flatten(2).transpose(1, 2), dim=-1)

    def start(self, prefix: torch.Tensor, cond: torch.Tensor | None = None) -> "PixelSNAILState":
        return PixelSNAILState(self, prefix, cond)


class PixelSNAILState:
    """Fast generation, per call: each step computes the network at one pixel only. The convolutions
    follow Ramachandran et al. 2017: every 2x2 convolution's input map is cached (channels last,
    zero-padded above and to the left, so the window of pixel (i, j) is rows i..i+1, columns j..j+1 of
    the cache) and filled pixel by pixel; a pixel reads its own and three earlier entries. The attention
    keeps every earlier pixel's key and value: when x_t is fed, each attention block computes pixel t's
    key and value from x_t and the features it cached at t, and the query of pixel t+1 is compared with
    the t+1 keys before it (none for pixel 0, whose output is zero).

    Cost per pixel: a fixed number of small matrix products (two per gated unit, 8C -> C and 8C -> 2C,
    plus the input layer, queries, keys and values) and, per attention block, one product with the t
    cached keys and one with the t values: O(t (D + C/2)), so O(N^2 (D + C/2)) per image for the
    attention against O(N^2 C^2) for the naive state's full forward per pixel. With B = 10 the work is
    so small that the per-pixel cost is mostly PyTorch's per-operation overhead (bench/fast_states.py).
    Priming a prefix is one full forward; the weights are flattened once per call and each unit's
    condition term computed once. Equal to the full forward up to float rounding."""

    def __init__(self, model: PixelSNAIL, prefix: torch.Tensor, cond: torch.Tensor | None):
        if prefix.dim() != 2:
            raise ValueError(f"prefix must have shape (B, T), got {tuple(prefix.shape)}.")
        c = model.config
        N, B, T0 = model.sequence_length, prefix.shape[0], prefix.shape[1]
        if T0 > N:
            raise ValueError(f"prefix has {T0} values but the image has only {N} pixels.")
        self.model, self.t = model, T0
        padded = torch.zeros(B, N, dtype=torch.long, device=model.head.weight.device)
        padded[:, :T0] = prefix.long()
        levels, cond = model._check(padded, cond)
        last = lambda v: v.permute(0, 2, 3, 1).contiguous()  # noqa: E731  (B, C, H, W) -> (B, H, W, C)
        with torch.no_grad():
            trace = {"maps": [], "keys_values": []}
            model.features(levels, cond, trace)  # one forward primes every cache
            x = model.one_hot(levels.view(B, c.height, c.width))
            self.x = last(F.pad(torch.cat([x, torch.ones_like(x[:, :1])], dim=1), (1, 1, 1, 0)))  # (B, H+1, W+2, Q+1)
            self.maps = [[last(down_right_pad(a1)), last(down_right_pad(a2))] for a1, a2 in trace["maps"]]  # (B, H+1, W+1, 2C)
            D = c.key_channels
            self.keys = [kv[..., :D].contiguous() for kv in trace["keys_values"]]  # (B, N, D)
            self.values = [kv[..., D:].contiguous() for kv in trace["keys_values"]]  # (B, N, C/2)
            self.features = [None] * c.blocks  # each attention block's input at the current pixel (B, C)
            self.position = model.position(1)[0].flatten(1).t()  # (N, 2)
            # per convolution: (weight (taps * C_in, C_out) in the caches' channels-last order, bias)
            self.weights = {id(conv): (conv.weight.permute(2, 3, 1, 0).reshape(-1, conv.out_channels), conv.bias)
                            for conv in model.modules() if isinstance(conv, nn.Conv2d)}
            # per gated unit: its condition term (B, 2C), or none
            self.cond = {id(unit): unit.cond(cond) for unit in model.modules()
                         if isinstance(unit, GatedResidual) and unit.cond is not None} if cond is not None else {}
            self.log_probs = self._pixel() if T0 < N else None

    def _conv(self, conv: nn.Conv2d, window: torch.Tensor) -> torch.Tensor:
        """A convolution at one output position: the channels-last window (B, kh, kw, C_in) or vector
        (B, C_in) it reads -> (B, C_out)."""
        weight, bias = self.weights[id(conv)]
        return torch.addmm(bias, window.reshape(window.shape[0], -1), weight)

    def _gate(self, unit: GatedResidual, x: torch.Tensor, c2: torch.Tensor) -> torch.Tensor:
        if id(unit) in self.cond:
            c2 = c2 + self.cond[id(unit)]
        a, b = c2.chunk(2, dim=1)
        return x + a * torch.sigmoid(b)

    def _unit(self, unit: GatedResidual, x: torch.Tensor, aux: torch.Tensor | None = None) -> torch.Tensor:
        """A 1x1 gated unit on one pixel's vector (B, C) -> (B, C)."""
        c1 = self._conv(unit.conv1, concat_elu(x))
        if aux is not None:
            c1 = c1 + self._conv(unit.aux, concat_elu(aux))
        return self._gate(unit, x, self._conv(unit.conv2, concat_elu(c1)))

    def _pixel(self) -> torch.Tensor:
        """The network at the current pixel t = (i, j) -> log-probs (B, Q); caches its features."""
        m, c = self.model, self.model.config
        i, j = divmod(self.t, c.width)
        B = self.x.shape[0]
        ul = torch.zeros(B, c.channels, dtype=self.x.dtype, device=self.x.device)
        if i > 0:  # the row above, columns j-1..j+1 (the caches' coordinates are shifted by one)
            ul = ul + self._conv(m.input_down, self.x[:, i:i + 1, j:j + 3])
        if j > 0:  # rows i-1..i, column j-1
            ul = ul + self._conv(m.input_right, self.x[:, i:i + 2, j:j + 1])
        position = self.position[self.t].expand(B, -1)
        for b, attention in enumerate(m.attention):
            for r in range(b * c.residuals, (b + 1) * c.residuals):
                unit, (a1, a2) = m.residuals[r], self.maps[r]
                a1[:, i + 1, j + 1] = concat_elu(ul)
                a2[:, i + 1, j + 1] = concat_elu(self._conv(unit.conv1, a1[:, i:i + 2, j:j + 2]))
                ul = self._gate(unit, ul, self._conv(unit.conv2, a2[:, i:i + 2, j:j + 2]))
            self.features[b] = ul
            if self.t == 0:
                mixed = torch.zeros(B, c.channels // 2, dtype=ul.dtype, device=ul.device)
            else:
                q = self._conv(attention.q_out, self._unit(attention.q_res, torch.cat([ul, position], dim=1)))
                scores = torch.bmm(self.keys[b][:, :self.t], q[:, :, None]) / math.sqrt(c.key_channels)  # (B, t, 1)
                mixed = torch.bmm(torch.softmax(scores, dim=1).transpose(1, 2), self.values[b][:, :self.t])[:, 0]
            ul = self._unit(attention.out_res, ul, mixed)
        return F.log_softmax(self._conv(m.head, F.elu(ul)), dim=-1)

    @torch.no_grad()
    def step(self, levels: torch.Tensor) -> torch.Tensor | None:
        m, c = self.model, self.model.config
        if self.t >= m.sequence_length:
            raise ValueError("The image is complete: there is no next pixel to feed.")
        i, j = divmod(self.t, c.width)
        x = F.one_hot(levels.long().view(-1).to(self.x.device), c.quantization_levels).to(self.x.dtype)
        self.x[:, i + 1, j + 1, :-1] = x  # the ones channel is already 1
        position = self.position[self.t].expand(x.shape[0], -1)
        D = c.key_channels
        for b, attention in enumerate(m.attention):  # pixel t's key and value, now that x_t is known
            kv = self._conv(attention.kv_out, self._unit(attention.kv_res, torch.cat([x, self.features[b], position], dim=1)))
            self.keys[b][:, self.t] = kv[:, :D]
            self.values[b][:, self.t] = kv[:, D:]
        self.t += 1
        self.log_probs = self._pixel() if self.t < m.sequence_length else None
        return self.log_probs

    def reorder(self, index: torch.Tensor) -> "PixelSNAILState":
        pick = lambda v: v.index_select(0, index)  # noqa: E731
        self.x = pick(self.x)
        self.maps = [[pick(a1), pick(a2)] for a1, a2 in self.maps]
        self.keys, self.values = [pick(k) for k in self.keys], [pick(v) for v in self.values]
        self.features = [None if f is None else pick(f) for f in self.features]
        self.cond = {k: pick(v) for k, v in self.cond.items()}
        self.log_probs = None if self.log_probs is None else pick(self.log_probs)
        return self
