"""MADE (Germain, Gregor, Murray and Larochelle 2015, "MADE: Masked Autoencoder for Distribution
Estimation"): a multilayer perceptron over all H*W pixels whose weight masks make output d depend
only on the pixels before d in an ordering, class-conditional (a learned bias per digit in every
layer). Its orderings are connectivity-agnostic: the hidden units' degrees are fixed, the inputs'
ranks come from the order, so one set of weights serves every order, and training mixes the natural
(raster) order with random "known pixels first" orders (order-agnostic training, Uria et al. 2014).
That is what lets a completion condition on every known pixel exactly: put them first.

With `order` (a permutation of the H*W positions, order[t] = the pixel read t-th; None = raster),
`log_probs` keeps levels and rows by position (row p = log p(x_p | the pixels before p in the order, y))
and `start`'s prefix lists the values of order[0], order[1], ... (engine/models/base.py)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

from engine.models.base import AutoregressiveModel


@dataclass
class MADEConfig:
    quantization_levels: int = 2  # Q
    cond_channels: int = 0  # K; 0 = unconditional
    height: int = 28
    width: int = 28
    hidden_sizes: list[int] = field(default_factory=lambda: [500])
    # Training only: the fraction of training images read in a random "known pixels first" order (a
    # random subset of the pixels first, then the rest, each part in raster order); the others are
    # read in raster order. 0 = a plain raster-order MADE.
    order_agnostic: float = 0.5

    def __post_init__(self):
        for name, low in {"quantization_levels": 2, "cond_channels": 0, "height": 1, "width": 1}.items():
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"MADEConfig.{name} must be an integer >= {low}, got {value!r}.")
        if self.height * self.width < 2:
            raise ValueError("MADEConfig: an image needs at least 2 pixels.")
        if not isinstance(self.hidden_sizes, (list, tuple)) or not self.hidden_sizes or not all(
                isinstance(h, int) and not isinstance(h, bool) and h >= 1 for h in self.hidden_sizes):
            raise ValueError(f"MADEConfig.hidden_sizes must be a non-empty list of integers >= 1, got {self.hidden_sizes!r}.")
        self.hidden_sizes = list(self.hidden_sizes)
        if isinstance(self.order_agnostic, bool) or not isinstance(self.order_agnostic, (int, float)) or not 0 <= self.order_agnostic <= 1:
            raise ValueError(f"MADEConfig.order_agnostic must be a number in [0, 1], got {self.order_agnostic!r}.")
        self.order_agnostic = float(self.order_agnostic)


def hidden_degrees(size: int, n: int) -> torch.Tensor:
    """Degrees 0..n-2 spread evenly over `size` units, nondecreasing: a unit of degree m sees the
    inputs of rank <= m, and feeds the outputs of rank > m."""
    return (torch.arange(size) * (n - 1)) // size


class MADE(AutoregressiveModel):
    any_order = True
    family_name = "MADE"
    family_summary = ("a masked multilayer perceptron over all pixels at once; its masks can put any pixel first, "
                      "so it completes a digit conditioned on every known pixel exactly")
    family_paper = "Germain et al. 2015"

    def __init__(self, config: MADEConfig):
        super().__init__()
        self.config = c = config
        N, Q, K = c.height * c.width, c.quantization_levels, c.cond_channels
        sizes = c.hidden_sizes
        # input: one-hot of every pixel (an unseen pixel adds nothing, so the mask is part of the input);
        # output: Q-1 logits per pixel beside a fixed 0 for level 0
        self.w_in = nn.Parameter(torch.randn(sizes[0], N, Q) / (N * Q / 2) ** 0.5)
        self.b_in = nn.Parameter(torch.zeros(sizes[0]))
        self.hidden = nn.ModuleList([nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:])])
        self.w_out = nn.Parameter(torch.randn(N, Q - 1, sizes[-1]) / sizes[-1] ** 0.5)
        self.b_out = nn.Parameter(torch.zeros(N, Q - 1))
        self.cond = nn.ModuleList([nn.Linear(K, h, bias=False) for h in sizes] + [nn.Linear(K, N * (Q - 1), bias=False)]) if K else None
        for i, h in enumerate(sizes):
            self.register_buffer(f"degree_{i}", hidden_degrees(h, N), persistent=False)
        for i, layer in enumerate(self.hidden):  # hidden -> hidden: degree may not decrease
            self.register_buffer(f"mask_{i}", (self.degrees(i + 1)[:, None] >= self.degrees(i)[None, :]).float(), persistent=False)

    def architecture_note(self) -> str:
        return "every output reads every earlier pixel in its order (hidden degrees spread evenly over 0..N-2); any order"

    def degrees(self, i: int) -> torch.Tensor:
        return getattr(self, f"degree_{i}")

    @property
    def sequence_length(self) -> int:
        return self.config.height * self.config.width

    def check_order(self, order: torch.Tensor | None) -> torch.Tensor:
        """None (raster) or a permutation of 0..N-1 -> that permutation (N,) long on the model's device."""
        N = self.sequence_length
        device = self.b_in.device
        if order is None:
            return torch.arange(N, device=device)
        order = torch.as_tensor(order, device=device).long().view(-1)
        if order.numel() != N or not torch.equal(order.sort().values, torch.arange(N, device=device)):
            raise ValueError(f"order must be a permutation of the {N} pixel positions 0..{N - 1}.")
        return order

    def condition_biases(self, cond: torch.Tensor | None, rows: int) -> list:
        K = self.config.cond_channels
        if K == 0:
            if cond is not None:
                raise ValueError("This model is unconditional; pass condition=None.")
            return [None] * (len(self.config.hidden_sizes) + 1)
        if cond is None or cond.dim() != 2 or cond.shape != (rows, K):
            raise ValueError(f"This model needs a condition of shape ({rows}, {K}), got {None if cond is None else tuple(cond.shape)}.")
        return [layer(cond.to(self.b_in.dtype)) for layer in self.cond]

    def _check_levels(self, levels: torch.Tensor) -> torch.Tensor:
        N, Q = self.sequence_length, self.config.quantization_levels
        if levels.dim() != 2 or levels.shape[1] != N:
            raise ValueError(f"levels must have shape (B, {N}), got {tuple(levels.shape)}.")
        levels = levels.long()
        if levels.numel() and (levels.min() < 0 or levels.max() >= Q):
            raise ValueError(f"levels must lie in 0..{Q - 1}.")
        return levels

    def _logits_with_zero(self, logits: torch.Tensor) -> torch.Tensor:
        """(..., Q-1) -> (..., Q) with level 0's logit fixed at 0."""
        return torch.cat([torch.zeros_like(logits[..., :1]), logits], dim=-1)

    def log_probs(self, levels: torch.Tensor, cond: torch.Tensor | None = None, order: torch.Tensor | None = None) -> torch.Tensor:
        """levels (B, N) by position, cond (B, K) -> (B, N, Q) by position: row p = log p(x_p | x_s for the
        s before p in `order`, y) (order=None: raster, row t = log p(x_t | x_<t, y)).

        In train mode without an order it trains order-agnostically (`training_log_probs`): row p is then
        pixel p's log-probability under the order drawn for its part of the batch, so the rows still sum
        to that image's log-likelihood, which is all a training loss reads."""
        if order is None and self.training and self.config.order_agnostic > 0:
            return self.training_log_probs(levels, cond)
        levels = self._check_levels(levels)
        if order is None:
            return self.ordered_log_probs(levels, cond)
        order = self.check_order(order)
        rows = self.ordered_log_probs(levels[:, order], cond, order)
        return torch.empty_like(rows).index_copy_(1, order, rows)

    def ordered_log_probs(self, levels: torch.Tensor, cond: torch.Tensor | None = None, order: torch.Tensor | None = None) -> torch.Tensor:
        """The masked network itself, in the model's order: levels (B, N) with levels[:, t] the value of
        pixel order[t] -> (B, N, Q), row t = log p(x_order[t] | x_order[<t], y)."""
        levels = self._check_levels(levels)
        raster = order is None
        order = self.check_order(order)
        B, N = levels.shape
        Q = self.config.quantization_levels
        biases = self.condition_biases(cond, B)
        rank = torch.arange(N, device=levels.device)
        # weights regathered into the model's order: column t belongs to pixel order[t]
        w_in = (self.w_in if raster else self.w_in[:, order]) * (self.degrees(0)[:, None] >= rank[None, :]).to(self.w_in.dtype)[:, :, None]
        x = F.one_hot(levels, Q).to(w_in.dtype).view(B, N * Q)
        h = F.linear(x, w_in.reshape(w_in.shape[0], N * Q), self.b_in)
        h = F.relu(h if biases[0] is None else h + biases[0])
        for i, layer in enumerate(self.hidden):
            h = F.linear(h, layer.weight * getattr(self, f"mask_{i}"), layer.bias)
            h = F.relu(h if biases[i + 1] is None else h + biases[i + 1])
        w_out = (self.w_out if raster else self.w_out[order]) * (rank[:, None] > self.degrees(len(self.hidden))[None, :]).to(self.w_out.dtype)[:, None, :]
        logits = F.linear(h, w_out.reshape(N * (Q - 1), -1), (self.b_out if raster else self.b_out[order]).reshape(-1)).view(B, N, Q - 1)
        if biases[-1] is not None:
            out_bias = biases[-1].view(B, -1, Q - 1)
            logits = logits + (out_bias if raster else out_bias[:, order])
        return F.log_softmax(self._logits_with_zero(logits), dim=-1)

    def training_log_probs(self, levels: torch.Tensor, cond: torch.Tensor | None, generator: torch.Generator | None = None,
                           groups: int = 4) -> torch.Tensor:
        """Order-agnostic training: levels (B, N) in raster order -> (B, N, Q) log-probs of each pixel
        (rows in raster order again), the batch split into `groups` parts that each read one order: raster
        with probability 1 - order_agnostic, else a random "known pixels first" order."""
        B, N = levels.shape
        out = []
        for part in torch.arange(B).chunk(groups):
            part = part.to(levels.device)
            order = torch.arange(N, device=levels.device)
            if torch.rand((), generator=generator).item() < self.config.order_agnostic:
                order = known_first_order(torch.rand(N, generator=generator) < torch.rand((), generator=generator)).to(levels.device)
            c = None if cond is None else cond[part]
            rows = self.ordered_log_probs(levels[part][:, order], c, order)
            out.append(torch.empty_like(rows).index_copy_(1, order, rows))
        return torch.cat(out)

    def start(self, prefix: torch.Tensor, cond: torch.Tensor | None = None, order: torch.Tensor | None = None) -> "MADEState":
        return MADEState(self, prefix, cond, order)


def known_first_order(known: torch.Tensor) -> torch.Tensor:
    """known (N,) bool -> the order that reads the known positions first, then the others (each in raster order)."""
    known = known.view(-1).bool()
    return torch.cat([known.nonzero().view(-1), (~known).nonzero().view(-1)])


class MADEState:
    """MADE's fast generation state (per call): the first hidden layer's pre-activation is kept and
    updated rank-1 per pixel read (only the units of degree >= its rank take it), and only the next
    position's output is computed, through the deeper layers' units of degree < its rank (the others
    cannot reach it; degrees are sorted, so those units are a prefix). O(H) per pixel for a
    one-hidden-layer MADE instead of a whole forward. The masked weights are made once per call."""

    def __init__(self, model: MADE, prefix: torch.Tensor, cond: torch.Tensor | None, order: torch.Tensor | None):
        if prefix.dim() != 2:
            raise ValueError(f"prefix must have shape (B, T), got {tuple(prefix.shape)}.")
        N = model.sequence_length
        B, T0 = prefix.shape
        if T0 > N:
            raise ValueError(f"prefix has {T0} values but the image has only {N} pixels.")
        self.model, self.order = model, model.check_order(order)
        self.positions = self.order.tolist()
        Q = model.config.quantization_levels
        with torch.no_grad():
            biases = model.condition_biases(cond, B)
            prefix = prefix.to(model.b_in.device).long()
            if T0 and (prefix.min() < 0 or prefix.max() >= Q):
                raise ValueError(f"prefix levels must lie in 0..{Q - 1}.")
            # per layer: how many units have degree < t, for every t (degrees are sorted)
            ts = torch.arange(N + 1, device=prefix.device)
            self.below = [torch.searchsorted(model.degrees(i), ts).tolist() for i in range(len(model.config.hidden_sizes))]
            self.hidden = [(layer.weight * getattr(model, f"mask_{i}"), layer.bias, biases[i + 1]) for i, layer in enumerate(model.hidden)]
            self.w_in = model.w_in.permute(1, 2, 0)  # (N, Q, H): pixel p's weights for each of its levels
            self.out_bias = model.b_out if biases[-1] is None else model.b_out + biases[-1].view(B, N, Q - 1)
            w = self.w_in[self.order[:T0]] * (model.degrees(0)[None, :] >= ts[:T0, None]).to(self.w_in.dtype)[:, None, :]
            self.a = F.linear(F.one_hot(prefix, Q).to(w.dtype).view(B, T0 * Q), w.reshape(T0 * Q, w.shape[-1]).t(), model.b_in)
            if biases[0] is not None:
                self.a = self.a + biases[0]
        self.t = T0
        self.log_probs = self._next()

    @torch.no_grad()
    def _next(self) -> torch.Tensor | None:
        m, t = self.model, self.t
        if t >= m.sequence_length:
            return None
        h = F.relu(self.a[:, :self.below[0][t]])
        for i, (weight, bias, cond_bias) in enumerate(self.hidden):
            n = self.below[i + 1][t]
            z = F.linear(h, weight[:n, :h.shape[1]], bias[:n])
            h = F.relu(z if cond_bias is None else z + cond_bias[:, :n])
        p = self.positions[t]
        bias = self.out_bias[p] if self.out_bias.dim() == 2 else self.out_bias[:, p]
        logits = F.linear(h, m.w_out[p, :, :h.shape[1]]) + bias
        return F.log_softmax(m._logits_with_zero(logits), dim=-1)

    @torch.no_grad()
    def step(self, levels: torch.Tensor) -> torch.Tensor | None:
        m, t = self.model, self.t
        if t >= m.sequence_length:
            raise ValueError("The image is complete: there is no next pixel to feed.")
        first = self.below[0][t]  # the units of degree >= t (a suffix) take pixel t
        self.a[:, first:] += self.w_in[self.positions[t]][levels.long().view(-1), first:]
        self.t += 1
        self.log_probs = self._next()
        return self.log_probs

    def reorder(self, index: torch.Tensor) -> "MADEState":
        self.a = self.a.index_select(0, index)
        self.hidden = [(w, b, None if c is None else c.index_select(0, index)) for w, b, c in self.hidden]
        if self.out_bias.dim() == 3:
            self.out_bias = self.out_bias.index_select(0, index)
        self.log_probs = None if self.log_probs is None else self.log_probs.index_select(0, index)
        return self
