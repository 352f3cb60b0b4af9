"""A decoder-only causal Transformer over the pixels in raster order (Vaswani et al. 2017, "Attention Is
All You Need", as GPT-2 uses it: Radford et al. 2019; on images as in Parmar et al. 2018, "Image
Transformer", and Chen et al. 2020, "Generative Pretraining from Pixels"): pre-norm blocks of causal
multi-head self-attention and an MLP, factorized row + column position embeddings, and a class embedding.

The sequence the blocks read has N = H*W slots: slot 0 is a learned start vector, slot s > 0 the embedded
level x_{s-1}; every slot also gets the row and column embedding of the pixel it predicts and the
embedding of the condition (a class embedding in every slot rather than a class token in slot 0 alone:
every layer reads the digit directly), so slot s's output is p(x_s | x_<s, y). Fast generation keeps
each layer's keys and values in a per-call cache and runs one new query per pixel against it."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from engine.models.base import AutoregressiveModel, check_image_inputs


@dataclass
class CausalTransformerConfig:
    quantization_levels: int = 2  # Q
    cond_channels: int = 0  # K; 0 = unconditional (no class embedding)
    height: int = 28
    width: int = 28
    d_model: int = 64  # C, the width of every slot
    layers: int = 4
    heads: int = 4  # d_model is split evenly between them
    mlp_channels: int = 256  # the MLP's hidden width (4 x d_model in GPT-2)

    def __post_init__(self):
        ints = {"quantization_levels": 2, "cond_channels": 0, "height": 1, "width": 1, "d_model": 1, "layers": 1,
                "heads": 1, "mlp_channels": 1}
        for name, low in ints.items():
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"CausalTransformerConfig.{name} must be an integer >= {low}, got {value!r}.")
        if self.d_model % self.heads:
            raise ValueError(f"CausalTransformerConfig.d_model ({self.d_model}) must be a multiple of heads ({self.heads}).")


def cached_attention(q: torch.Tensor, keys_t: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """One new query per row against every cached key, its own included: q (B * heads, 1, d), already
    scaled by 1 / sqrt(d), keys_t (B * heads, d, T) (the keys transposed: the product reads them along T,
    about 2x faster on this CPU than a transposed view), values (B * heads, T, d) -> (B * heads, 1, d).
    No mask: the cache holds only the past and the present. (`scaled_dot_product_attention(...,
    is_causal=True)` would be wrong here: PyTorch aligns that mask top-left, so the single query, row 0 of
    a 1 x T mask, would see key 0 alone; tests/test_transformer.py shows the difference.)"""
    return torch.bmm(torch.softmax(torch.bmm(q, keys_t), dim=-1), values)


class Block(nn.Module):
    """Pre-norm: x + attention(LayerNorm(x)), then x + MLP(LayerNorm(x))."""

    def __init__(self, c: CausalTransformerConfig):
        super().__init__()
        self.heads = c.heads
        self.norm_attention = nn.LayerNorm(c.d_model)
        self.qkv = nn.Linear(c.d_model, 3 * c.d_model)
        self.proj = nn.Linear(c.d_model, c.d_model)
        self.norm_mlp = nn.LayerNorm(c.d_model)
        self.mlp_in = nn.Linear(c.d_model, c.mlp_channels)
        self.mlp_out = nn.Linear(c.mlp_channels, c.d_model)

    def split(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, T, C) -> queries, keys, values (B, heads, T, C / heads) of LayerNorm(x)."""
        B, T, C = x.shape
        qkv = self.qkv(self.norm_attention(x)).view(B, T, 3, self.heads, C // self.heads)
        return qkv.permute(2, 0, 3, 1, 4).unbind(0)

    def finish(self, x: torch.Tensor, attended: torch.Tensor) -> torch.Tensor:
        """The residual after attention (B, heads, T, C / heads), then the MLP's -> (B, T, C)."""
        B, T, C = x.shape
        x = x + self.proj(attended.transpose(1, 2).reshape(B, T, C))
        return x + self.mlp_out(F.gelu(self.mlp_in(self.norm_mlp(x))))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x (B, T, C), slot t reading slots <= t -> (output (B, T, C), keys, values (B, heads, T, C / heads))."""
        q, k, v = self.split(x)
        return self.finish(x, F.scaled_dot_product_attention(q, k, v, is_causal=True)), k, v


class CausalTransformer(AutoregressiveModel):
    family_name = "Causal Transformer"
    family_summary = ("causal self-attention over every earlier pixel (pre-norm blocks, row + column positions, "
                      "a class embedding); fast generation keeps a key/value cache")
    family_paper = "Vaswani et al. 2017; Parmar et al. 2018"

    def __init__(self, config: CausalTransformerConfig):
        super().__init__()
        self.config = c = config
        self.embed = nn.Embedding(c.quantization_levels, c.d_model)
        self.start_token = nn.Parameter(torch.zeros(c.d_model))
        self.class_embed = nn.Linear(c.cond_channels, c.d_model, bias=False) if c.cond_channels else None
        self.row = nn.Embedding(c.height, c.d_model)
        self.column = nn.Embedding(c.width, c.d_model)
        self.blocks = nn.ModuleList([Block(c) for _ in range(c.layers)])
        self.norm = nn.LayerNorm(c.d_model)
        self.head = nn.Linear(c.d_model, c.quantization_levels)
        self._init_weights()

    def _init_weights(self) -> None:
        """GPT-2's N(0, 0.02) for the linear maps, zero biases, and the projections that write into the
        residual stream scaled by 1 / sqrt(2 layers), so the stream's variance does not grow with depth;
        the inputs at unit scale as in Vaswani et al. (levels and classes N(0, 1), the positions
        sinusoids: the row's in the first half of the channels, the column's in the second, as the Image
        Transformer does it), so that an offset like "the pixel above" is a fixed linear map of the
        position from the first step. The position tables stay learned."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, 0.0, 0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        for block in self.blocks:
            for proj in (block.proj, block.mlp_out):
                nn.init.normal_(proj.weight, 0.0, 0.02 / math.sqrt(2 * self.config.layers))
        with torch.no_grad():
            nn.init.normal_(self.embed.weight)
            nn.init.normal_(self.start_token)
            if self.class_embed is not None:
                nn.init.normal_(self.class_embed.weight)
            C = self.config.d_model
            half = C // 2
            for table, lo, hi in ((self.row, 0, half), (self.column, half, C)):
                table.weight.zero_()
                n = hi - lo
                index = torch.arange(table.num_embeddings, dtype=torch.float32)[:, None]
                freq = 10.0 ** (-torch.arange(0, n, 2, dtype=torch.float32) / max(n, 1))  # periods of 2 pi up to ~60 pixels
                table.weight[:, lo:hi:2] = torch.sin(index * freq)
                table.weight[:, lo + 1:hi:2] = torch.cos(index * freq[:(n // 2)])

    @property
    def sequence_length(self) -> int:
        return self.config.height * self.config.width

    def architecture_note(self) -> str:
        c = self.config
        return f"every pixel attends to all the pixels before it ({c.layers} layers of {c.heads} heads, width {c.d_model})"

    def positions(self, slots: torch.Tensor) -> torch.Tensor:
        """Slot indices (T,) -> (T, C): the row + column embedding of the pixel each slot predicts."""
        W = self.config.width
        return self.row(slots // W) + self.column(slots % W)

    def inputs(self, levels: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        """levels (B, T) of x_0..x_{T-1} (T < N) -> the first T+1 slots' inputs (B, T+1, C): the start vector
        then the levels' embeddings, each plus its position and the condition's embedding."""
        B, T = levels.shape
        x = torch.cat([self.start_token.expand(B, 1, -1), self.embed(levels)], dim=1)
        x = x + self.positions(torch.arange(T + 1, device=levels.device))
        return x if cond is None else x + self.class_embed(cond)[:, None]

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """The last block's output (B, ..., C) -> (B, ..., Q)."""
        return self.head(self.norm(x))

    def log_probs(self, levels: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """levels (B, N) in raster order, cond (B, K) -> (B, N, Q): row t = log p(x_t | x_<t, y)."""
        levels, cond = check_image_inputs(self.config, levels, cond, self.head.weight.dtype)
        x = self.inputs(levels[:, :-1], cond)  # the last value predicts nothing
        for block in self.blocks:
            x = block(x)[0]
        return F.log_softmax(self.logits(x), dim=-1)

    def start(self, prefix: torch.Tensor, cond: torch.Tensor | None = None) -> "KVCacheState":
        return KVCacheState(self, prefix, cond)


class KVCacheState:
    """Fast generation, per call: every layer's keys (B * heads, C / heads, N) and values
    (B * heads, N, C / heads) of the slots so far, made for the whole image and filled as the pixels come. One forward over
    the prefix's slots fills them; each step embeds the one new value and runs that slot alone through
    the blocks, its query attending to the cache (`cached_attention`): O(t) work for pixel t instead of
    the naive state's full forward over t slots. The step reads the weights as plain matrices taken once
    per call (the queries' 1 / sqrt(d) folded in), since at B = 10 the per-op overhead of modules, not
    arithmetic, is most of a step's cost. Equal to the full forward up to float rounding."""

    def __init__(self, model: CausalTransformer, prefix: torch.Tensor, cond: torch.Tensor | None):
        if prefix.dim() != 2:
            raise ValueError(f"prefix must have shape (B, T), got {tuple(prefix.shape)}.")
        c = model.config
        N, C, heads = model.sequence_length, c.d_model, c.heads
        B, T0 = prefix.shape
        if T0 > N:
            raise ValueError(f"prefix has {T0} values but the image has only {N} pixels.")
        device = model.head.weight.device
        padded = torch.zeros(B, N, dtype=torch.long, device=device)
        padded[:, :T0] = prefix.long()
        levels, self.cond = check_image_inputs(c, padded, cond, model.head.weight.dtype)
        self.model, self.heads, self.t = model, heads, T0  # slots 0..T0 are filled (slot T0 predicts x_T0) once primed
        self.log_probs = None
        shape = (B * heads, N, C // heads)
        self.values = [torch.zeros(shape, dtype=model.head.weight.dtype, device=device) for _ in model.blocks]
        self.keys = [v.transpose(1, 2).contiguous() for v in self.values]
        if T0 == N:
            return  # the image is complete: nothing to predict, nothing to cache
        with torch.no_grad():
            self.embed = model.embed.weight
            # what every slot adds to its level's embedding: its position and the class, (B or 1, N, C)
            self.slot_bias = model.positions(torch.arange(N, device=device))[None]
            if self.cond is not None:
                self.slot_bias = self.slot_bias + model.class_embed(self.cond)[:, None]
            self.final = (model.norm, model.head.weight.t(), model.head.bias)
            self.weights = []
            scale = torch.ones(3 * C, dtype=self.embed.dtype, device=device)
            scale[:C] = (C // heads) ** -0.5
            for b in model.blocks:
                self.weights.append((b.norm_attention, b.qkv.weight.t() * scale, b.qkv.bias * scale, b.proj.weight.t(),
                                     b.proj.bias, b.norm_mlp, b.mlp_in.weight.t(), b.mlp_in.bias, b.mlp_out.weight.t(),
                                     b.mlp_out.bias))
            x = model.inputs(levels[:, :T0], self.cond)
            for block, keys, values in zip(model.blocks, self.keys, self.values):
                x, k, v = block(x)
                keys[:, :, :T0 + 1] = k.reshape(B * heads, T0 + 1, -1).transpose(1, 2)
                values[:, :T0 + 1] = v.reshape(B * heads, T0 + 1, -1)
            self.log_probs = F.log_softmax(model.logits(x[:, -1]), dim=-1)

    @torch.no_grad()
    def step(self, levels: torch.Tensor) -> torch.Tensor | None:
        m, N = self.model, self.model.sequence_length
        if self.t >= N:
            raise ValueError("The image is complete: there is no next pixel to feed.")
        self.t += 1
        if self.t >= N:
            self.log_probs = None
            return None
        s = self.t
        x = self.embed[levels.long().view(-1).to(self.embed.device)] + self.slot_bias[:, s]  # (B, C)
        B, C = x.shape
        heads = self.heads
        for (ln1, w_qkv, b_qkv, w_proj, b_proj, ln2, w_in, b_in, w_out, b_out), keys, values in zip(self.weights, self.keys, self.values):
            qkv = torch.addmm(b_qkv, F.layer_norm(x, (C,), ln1.weight, ln1.bias, ln1.eps), w_qkv).view(B, 3, heads, -1)
            keys.view(B, heads, -1, N)[:, :, :, s] = qkv[:, 1]
            values.view(B, heads, N, -1)[:, :, s] = qkv[:, 2]
            attended = cached_attention(qkv[:, 0].reshape(B * heads, 1, -1), keys[:, :, :s + 1], values[:, :s + 1])
            x = torch.addmm(b_proj, attended.view(B, C), w_proj).add_(x)
            hidden = F.gelu(torch.addmm(b_in, F.layer_norm(x, (C,), ln2.weight, ln2.bias, ln2.eps), w_in))
            x = torch.addmm(b_out, hidden, w_out).add_(x)
        norm, w_head, b_head = self.final
        self.log_probs = F.log_softmax(torch.addmm(b_head, F.layer_norm(x, (C,), norm.weight, norm.bias, norm.eps), w_head), dim=-1)
        return self.log_probs

    def reorder(self, index: torch.Tensor) -> "KVCacheState":
        rows = (index.view(-1, 1) * self.heads + torch.arange(self.heads, device=index.device)).view(-1)  # (B' * heads,)
        self.keys = [k.index_select(0, rows) for k in self.keys]
        self.values = [v.index_select(0, rows) for v in self.values]
        if self.cond is not None:
            self.cond = self.cond.index_select(0, index)
            if self.log_probs is not None:
                self.slot_bias = self.slot_bias.index_select(0, index)
        self.log_probs = None if self.log_probs is None else self.log_probs.index_select(0, index)
        return self
