"""WaveNet's fast generation (Paine et al. 2016, "Fast Wavenet Generation Algorithm"): each layer keeps a
queue of its last (k-1)*d inputs, so a step computes one column per layer instead of re-running the
receptive field. `WaveNetState` is what `WaveNet.start` returns: the family interface's per-call state
(engine/models/base.py) over a `FastState`; the n-step unrolled loss steps a `FastState` with soft inputs.

The queues live in states made per call; nothing is stored on the (possibly shared) model.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from engine.encoding import one_hot

if TYPE_CHECKING:
    from engine.models.wavenet import WaveNet


class FastState:
    """Per-call incremental state: per layer a ring of its last (k-1)*d inputs, each (B, C).

    Rings are Python lists of column tensors, so updating them is not an in-place tensor write and
    gradients can flow through an unrolled rollout (n-step training uses the same code).
    """

    def __init__(self, model: WaveNet, layer_inputs: list[torch.Tensor], cond: torch.Tensor | None, last_logits: torch.Tensor,
                 next_columns: torch.Tensor | None = None):
        """layer_inputs: per layer a list of its last L_l inputs minus `input_offsets(model)[l]`, each (B, C_l),
        oldest first (zero padding before t=0 becomes -offset); last_logits (B, Q). `from_forward` builds them.
        next_columns (B,) int64: the absolute output column the first step() computes, which a model with
        a position_grid needs (its position biases); ignored by a model without one."""
        biases = model.condition_biases(cond)
        # Per call, the conv weights split by tap and transposed for addmm: per-op overhead, not FLOPs,
        # dominates a one-column step on CPU, so a step is five ops per layer. Two exact rewrites:
        # (1) the residual stream is carried without its accumulated biases (offset B_l, a constant per
        #     layer), which are folded into each layer's conv bias instead, so a residual update is one
        #     addmm; queues hold inputs minus B_l (and -B_l for the zero padding before t=0);
        # (2) the gate is tanh_ on the first half, then glu (= first half * sigmoid(second half)).
        offsets = input_offsets(model)
        self.plan = []
        for layer, bias, offset in zip(model.layers, biases, offsets):
            conv = layer.conv
            k, d = conv.kernel_size[0], conv.dilation[0]
            w = conv.weight  # (2C, C_in, k); tap j multiplies x_{t-(k-1-j)d}
            total_bias = conv.bias if bias is None else conv.bias + bias
            if offset is not None:  # the inputs' dropped offset, through every tap
                total_bias = total_bias + offset @ w.sum(dim=2).t()
            taps = [(m, w[:, :, k - 1 - m].t().contiguous()) for m in range(1, k)]
            self.plan.append((layer.queue_size, d, w[:, :, k - 1].t().contiguous(), taps, total_bias,
                              None if layer.res is None else layer.res.weight.squeeze(-1).t().contiguous(),
                              layer.residual))
        self.head = _head(model, last_logits.shape[0])
        self.rings = [list(ring) for ring in layer_inputs]
        # Without autograd, every layer's gated output is written straight into its slice of one
        # persistent (B, sum C) buffer that the skip projection reads: no per-step concatenation.
        # With autograd (n-step training) the outputs stay separate tensors and are concatenated.
        self.zviews = None
        if not torch.is_grad_enabled() and _glu_out is not None:
            self._new_zbuf(last_logits, [layer.conv.out_channels // 2 for layer in model.layers], last_logits.shape[0])
        self.t = 0  # steps taken; ring slot t % L holds the oldest input x_{t-L}
        # A position_grid model: step() adds the position biases of column columns + t to every layer's
        # bias, all layers side by side in ONE add (bias_all: the plan's biases concatenated), and splits
        # the sum into per-layer views.
        self.position_biases = None
        if model.config.position_grid:
            if next_columns is None or next_columns.shape != (last_logits.shape[0],):
                raise ValueError("A model with a position_grid needs next_columns (B,): the absolute column of the next output.")
            self.position_biases, self.bias_widths = model.position_biases, model.bias_widths
            self.columns = next_columns.long()
            self.bias_all = torch.cat([entry[4] for entry in self.plan], dim=-1)  # (S,) or (B, S)
        self.logits = last_logits
        self.levels = None  # (table, shift) after use_levels()

    @classmethod
    def from_forward(cls, model: WaveNet, layer_inputs: list[torch.Tensor], logits: torch.Tensor,
                     cond: torch.Tensor | None, positions: torch.Tensor | None = None,
                     steps: int | None = None, offset: int = 0) -> "FastState":
        """Prime from a full forward pass. positions (O,) picks origins: the state then stands at each
        origin o (rows ordered b-major: row = b * O + i) having seen inputs 0..o. Default: the last
        column. With `steps`, only the queue slots that `steps` calls of step() will read are filled
        (n-step training unrolls a few steps, so most of a long queue is never touched). offset: the
        forward's own `offset` (the absolute index of its column 0), for a model with a position_grid."""
        B, _, T = logits.shape
        if positions is None:
            positions = torch.tensor([T - 1], device=logits.device)
        O = positions.numel()
        next_columns = (offset + 1 + positions).repeat(B)  # rows b-major
        rings = []
        for layer, inp, dropped in zip(model.layers, layer_inputs, input_offsets(model)):
            L = layer.queue_size
            slots = list(range(L))
            if steps is not None and L:
                k, d = layer.conv.kernel_size[0], layer.conv.dilation[0]
                # slot j (holding input o-L+1+j) is overwritten at step j, so it matters only if read at a step s <= j
                slots = sorted({(s - m * d) % L for s in range(steps) for m in range(1, k) if (s - m * d) % L >= s})
            padded = F.pad(inp, (L, 0))  # positions < 0 are zeros, as in the forward's padding
            if dropped is not None:  # the residual biases FastState carries outside its queues
                padded = padded - dropped[None, :, None]
            idx = positions[:, None] + 1 + torch.tensor(slots, dtype=torch.long, device=inp.device)[None, :]  # (O, S)
            g = padded[:, :, idx]  # (B, C, O, S)
            columns = g.permute(0, 2, 1, 3).reshape(B * O, inp.shape[1], len(slots)).unbind(-1)
            ring = [None] * L
            for j, column in zip(slots, columns):
                ring[j] = column
            rings.append(ring)
        last = logits[:, :, positions].permute(0, 2, 1).reshape(B * O, -1)
        if cond is not None:
            cond = cond.repeat_interleave(O, dim=0)
        return cls(model, rings, cond, last, next_columns)

    def reorder(self, index: torch.Tensor) -> "FastState":
        """Make row i a copy of row index[i] (queues, last logits, per-row condition biases): particle
        resampling in sequential Monte Carlo. In place on this per-call state; the model is untouched."""
        self.rings = [[None if col is None else col.index_select(0, index) for col in ring] for ring in self.rings]
        self.logits = self.logits.index_select(0, index)
        if self.position_biases is not None:
            self.columns = self.columns.index_select(0, index)
            if self.bias_all.dim() == 2:
                self.bias_all = self.bias_all.index_select(0, index)
        self.plan = [entry[:4] + (entry[4].index_select(0, index),) + entry[5:] if entry[4].dim() == 2 else entry
                     for entry in self.plan]  # entry[4]: conv bias + condition bias, (B, 2C) when conditional
        if self.zviews is not None and index.numel() != self.zbuf.shape[0]:  # a new row count: a new buffer
            self._new_zbuf(self.zbuf, [v.shape[1] for v in self.zviews], index.numel())
        return self

    def _new_zbuf(self, like: torch.Tensor, widths: list[int], rows: int) -> None:
        """The (rows, sum widths) skip buffer and its per-layer column slices."""
        self.zbuf = like.new_empty(rows, sum(widths))
        self.zviews = list(self.zbuf.split(widths, dim=1))

    def use_levels(self) -> "FastState":
        """Switch to hard inputs: step() then takes levels (B,) int64 instead of one-hot columns, and the
        input layer reads its k taps as ONE embedding_bag over per-tap weight tables instead of k
        one-hot matmuls (Q=127 and input kernel 7: 7 matmuls of 127x128 per step). Exact for one-hot
        inputs; the input ring's columns (one-hot, or zero padding before t=0) become level indices."""
        if self.levels is not None:
            return self
        L, d, w_now, taps, bias, w_res, residual = self.plan[0]
        if residual:
            raise ValueError("use_levels needs an input layer without a residual connection.")
        Q = w_now.shape[0]
        zero = w_now.new_zeros(1, w_now.shape[1])
        tables = [w_now] + [w for _, w in taps]  # now, then tap m = 1..k-1
        table = torch.cat([torch.cat([w, zero]) for w in tables])  # row j*(Q+1)+q: tap j at level q; q=Q: padding
        ring = self.rings[0]
        for j, col in enumerate(ring):
            if col is None:
                continue
            if not (((col == 0) | (col == 1)).all() and (col.sum(1) <= 1).all()):
                raise ValueError("use_levels needs one-hot (hard) inputs in the primed prefix.")
            ring[j] = torch.where(col.sum(1) > 0, col.argmax(1), torch.full_like(col[:, 0], Q, dtype=torch.long))
        shift = torch.arange(len(tables), device=table.device) * (Q + 1)
        self.levels = (table, shift)
        return self

    def step(self, x: torch.Tensor) -> torch.Tensor:
        """Feed the next input column x (B, Q) (one-hot or soft) - or, after use_levels(), the next
        levels x (B,) - and return the logits (B, Q) for the position after it."""
        h, zs, zviews, levels = x, [], self.zviews, self.levels
        biases = None
        if self.position_biases is not None:
            biases = (self.bias_all + self.position_biases(self.columns + self.t)).split(self.bias_widths, dim=1)
        for i, ((L, d, w_now, taps, bias, w_res, residual), ring) in enumerate(zip(self.plan, self.rings)):
            if biases is not None:
                bias = biases[i]
            p = self.t % L if L else 0
            if i == 0 and levels is not None:  # x holds levels: every tap of the input layer in one gather
                table, shift = levels
                idx = torch.stack([x] + [ring[(p - m * d) % L] for m, _ in taps], dim=1)
                a = torch.add(bias, F.embedding_bag(idx + shift, table, mode="sum"))
            else:
                a = torch.addmm(bias, h, w_now)
                for m, w_tap in taps:
                    a.addmm_(ring[(p - m * d) % L], w_tap)  # in place: a is this step's own tensor
            if L:
                ring[p] = h
            a.narrow(1, 0, a.shape[1] // 2).tanh_()
            if zviews is None:
                z = F.glu(a, dim=1)  # tanh(f) * sigmoid(g)
                zs.append(z)
            else:
                z = _glu_out(a, 1, out=zviews[i])
            if w_res is not None:
                h = torch.addmm(h, z, w_res) if residual else z @ w_res
        self.t += 1
        skip, hidden, out = self.head
        logits = out(hidden(skip(torch.cat(zs, dim=1) if zviews is None else self.zbuf)))
        self.logits = logits
        return logits


def _head(model: WaveNet, rows: int) -> list:
    """The three 1x1 convolutions after the skip sum (skip+ReLU, hidden+ReLU, output) as column maps.
    The skip and hidden projections hold most of a step's FLOPs (e.g. 736x1024 and 1024x512 on the
    MNIST-sized model). Without autograd on a CPU with oneDNN, large ones run as oneDNN linears on
    weights packed once per call, ReLU fused (736x1024 at batch 10: about 30 % faster than addmm on
    this project's CPU); small ones, and all whenever gradients must flow (n-step training), as addmm."""
    weight = model.skip.weight
    pack = (not torch.is_grad_enabled() and weight.device.type == "cpu" and weight.dtype == torch.float32
            and torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise"))
    maps = []
    for conv, relu in zip((model.skip, model.head_hidden, model.head_out), (True, True, False)):
        w2d = conv.weight.squeeze(-1)  # (out, in)
        packed = None
        if pack and w2d.numel() >= PACK_MIN_WEIGHTS:
            try:
                packed = torch.ops.mkldnn._reorder_linear_weight(w2d, rows)
            except (AttributeError, RuntimeError):  # a build without this oneDNN op: addmm below
                pass
        if packed is not None:
            act = "relu" if relu else "none"
            maps.append(lambda x, w=packed, b=conv.bias, act=act: torch.ops.mkldnn._linear_pointwise(x, w, b, act, [], ""))
        else:
            w = w2d.t().contiguous()
            maps.append((lambda x, w=w, b=conv.bias: torch.addmm(b, x, w).relu_()) if relu else
                        (lambda x, w=w, b=conv.bias: torch.addmm(b, x, w)))
    return maps


# Smallest projection (in x out weights) worth a packed oneDNN linear: at batch 10-20 on this project's CPU
# oneDNN wins from about 512x1024 (736x1024: 277 vs 406 us) and loses below (128x128: 77 vs 22 us).
PACK_MIN_WEIGHTS = 1 << 19


_glu_out = getattr(getattr(torch._C, "_nn", None), "glu", None)  # glu with out=, to fill a slice in place


def input_offsets(model: WaveNet) -> list[torch.Tensor | None]:
    """Per layer, the sum of the residual-projection biases that reach its input (None for the first
    layer, whose input is the one-hot column): FastState carries inputs minus this constant."""
    offsets, total = [None], None
    for layer in model.layers[:-1]:
        b = layer.res.bias
        total = b if (total is None or not layer.residual) else total + b
        offsets.append(total)
    return offsets


@torch.no_grad()
def prime(model: WaveNet, window: torch.Tensor, cond: torch.Tensor | None = None, offset: int = 0) -> FastState:
    """A FastState standing after input levels window (B, T) under cond (B, K), whose first column is the
    sequence's column `offset` (a window cut from a longer prefix), from ONE forward over the
    DISTINCT (window, condition) rows only, whose queues are then copied to their duplicates: N forecast
    trajectories from one observed curve prime one row; 128 completion particles of one drawn digit
    prime at most one row per digit."""
    B, T = window.shape
    x, c, inverse = window, cond, None
    if B > 1:
        key = window.double() if cond is None else torch.cat([window.double(), cond.double()], dim=1)  # exact for levels and one-hot
        unique, inverse = torch.unique(key, dim=0, return_inverse=True)
        if unique.shape[0] < B:
            x, c = unique[:, :T].long(), None if cond is None else unique[:, T:].to(cond.dtype)
        else:
            inverse = None
    logits, inputs = model(one_hot(x, model.config.quantization_levels, next(model.parameters()).dtype), c,
                           return_layer_inputs=True, offset=offset)
    if inverse is not None and x.shape[0] == 1:  # one distinct row (forecast trajectories): broadcast views, no copies
        logits, inputs = logits.expand(B, -1, -1), [h.expand(B, -1, -1) for h in inputs]
    elif inverse is not None:
        logits, inputs = logits.index_select(0, inverse), [h.index_select(0, inverse) for h in inputs]
    return FastState.from_forward(model, inputs, logits, cond, offset=offset)


def level_feed(model: WaveNet, state: FastState):
    """-> feed(levels (B,) int64) giving what state.step() takes for hard inputs: the levels themselves
    once the state reads them (FastState.use_levels, when Q x input kernel >= USE_LEVELS_MIN: a one-hot
    matmul that wide costs more than a gather), else their one-hot columns."""
    Q = model.config.quantization_levels
    if Q * model.layers[0].conv.kernel_size[0] >= USE_LEVELS_MIN:
        state.use_levels()
        return lambda levels: levels
    eye = torch.eye(Q, dtype=state.logits.dtype, device=state.logits.device)  # row s = one-hot column of level s
    return lambda levels: eye.index_select(0, levels)


# Smallest Q x input-kernel-size for which generate_fast feeds levels (FastState.use_levels) rather
# than one-hot columns: MNIST Q=2 (x3) keeps its three tiny matmuls, Fourier Q=127 (x7) gathers.
USE_LEVELS_MIN = 64


class WaveNetState:
    """The interface's generation state over a FastState: step() takes levels (B,) and log_probs holds
    log p(next | past, y) (B, Q)."""

    def __init__(self, fast: FastState, feed):
        self.fast, self.feed = fast, feed
        self.log_probs = F.log_softmax(fast.logits, dim=-1)

    def step(self, levels: torch.Tensor) -> torch.Tensor:
        self.log_probs = F.log_softmax(self.fast.step(self.feed(levels)), dim=-1)
        return self.log_probs

    def reorder(self, index: torch.Tensor) -> "WaveNetState":
        self.fast.reorder(index)
        self.log_probs = self.log_probs.index_select(0, index)
        return self


class BeforeFirstValue:
    """The state of a WaveNet without a start token before any value: x_0 gets the uniform distribution
    (row 0 of its log_probs), and the first step primes the queues from x_0."""

    def __init__(self, model: WaveNet, rows: int, cond: torch.Tensor | None, device):
        Q = model.config.quantization_levels
        self.model, self.cond, self.inner = model, cond, None
        self.log_probs = torch.full((rows, Q), -math.log(Q), dtype=model.skip.weight.dtype, device=device)

    def step(self, levels: torch.Tensor) -> torch.Tensor:
        if self.inner is None:
            self.inner = start_fast(self.model, levels.long().view(-1, 1), self.cond)
        else:
            self.inner.step(levels)
        self.log_probs = self.inner.log_probs
        return self.log_probs

    def reorder(self, index: torch.Tensor):
        if self.inner is not None:
            self.inner.reorder(index)
        elif self.cond is not None:
            self.cond = self.cond.index_select(0, index)
        self.log_probs = self.log_probs.index_select(0, index)
        return self


@torch.no_grad()
def start_fast(model: WaveNet, inputs: torch.Tensor, cond: torch.Tensor | None = None) -> WaveNetState | BeforeFirstValue:
    """The fast state after the input columns `inputs` (B, T) (`model.input_sequence` of a prefix): primed
    from a window of the last R of them (earlier ones cannot reach the next output), its position the
    window's offset in the sequence. T = 0 (no start token, no value yet): x_0 is uniform."""
    if inputs.shape[1] == 0:
        return BeforeFirstValue(model, inputs.shape[0], cond, inputs.device)
    window = inputs[:, -model.receptive_field:].long()
    fast = prime(model, window, cond, offset=inputs.shape[1] - window.shape[1])
    return WaveNetState(fast, level_feed(model, fast))
