"""The one interface every autoregressive family implements (in the spirit of pytorch-generative's
`AutoregressiveModel` and diffusers' pipelines): tasks, generation, training, checkpoints and the app
talk to a model only through it, never through a family's internals or its class.

A model is an `nn.Module` with a `config` dataclass (saved as config.json's "model") that has
`quantization_levels` (Q) and `cond_channels` (K, 0 = unconditional). It provides:

- `log_probs(levels (B, N) long, cond (B, K) | None) -> (B, N, Q)`: teacher-forced log-probabilities,
  already aligned: row t is log p(x_t | x_<t, y) in the model's own order (row 0 is p(x_0 | y)).
  Start tokens, masks, one-hot vs embeddings, mixture heads all stay inside the family. It is
  differentiable (training calls it in train mode); under `torch.no_grad()` a family may take a faster
  path that returns the same numbers up to float rounding.
- `log_likelihood(levels, cond) -> (B, N)`: log p(x_t | x_<t, y) of the observed values only, what
  training's loss needs. The default gathers it from `log_probs`; a family whose head is costly over
  all Q levels (PixelCNN++'s mixture: Q-1 bin edges per component) scores only the observed bin.
- `start(prefix (B, T0) long, cond) -> GenerationState`: a per-call state that stands after the
  prefix (T0 may be 0). The default is `NaiveState`, which re-runs `log_probs` on the whole prefix at
  every step: slow, obviously right, and the oracle every family's fast state is tested against.
- Capabilities, declared as class attributes and never probed:
  `soft_inputs` (log-probs through relaxed one-hot inputs, so the n-step unrolled loss can train it; such
  a family also provides `input_sequence(levels) -> (B, T)`, the columns its `forward(x (B, Q, T-1) soft,
  cond, return_layer_inputs=True) -> (logits (B, Q, T-1), primer)` reads, column t predicting column
  t+1, and `unroll_state(primer, logits, cond, origins, steps)`, a state at each origin whose `step`
  takes soft columns (B, Q) and returns logits (B, Q); engine/training.py trains it through them),
  `any_order` (`log_probs` and `start` take `order=`, a permutation (N,) long of the positions, shared
  by the batch: the model can put any pixel first, so it conditions on any set of known pixels exactly.
  `log_probs(levels, cond, order=order)` keeps rows by position: row t is log p(x_t | x_s for the s
  before t in `order`, y). `start(prefix (B, T0), cond, order=order)`: prefix[:, i] is the value at
  position order[i]; the state's log_probs is for position order[T0], and step(levels) feeds the value
  there. engine/completion.py puts the known pixels first and samples the rest through this.)
- `family_name` and `family_summary`: the family's name and one line on what it is (the app's picker);
  `family_paper` the paper it follows ("van den Oord et al. 2016"), which the model card cites.
- `sequence_length`: N for a model of fixed-size inputs (an image model's H*W), None for any length;
  `receptive_field`: how many past values a prediction can read, None for all of them.
- For train.py and the model card, with defaults here: `trainable` (False: made otherwise, e.g. a
  Mixture from trained members), `can_start_from(start_config, config)` (train.init_from),
  `architecture_note()` (a clause for the card, e.g. a receptive field).

A `GenerationState` has `log_probs` (B, Q) for the next position, `step(levels (B,) long) -> (B, Q)`
(feed the value taken there, get the next position's log-probs) and `reorder(index (B',) long)`, which
makes row i a copy of row index[i] (particle resampling; B' may differ from B). Callers never step a
fixed-length model past its last value (NaiveState's log_probs is None there). All of its incremental
state lives on it, made per call: nothing is stored on the model, which `st.cache_resource` shares
between browser sessions running in threads.
"""

from __future__ import annotations

from typing import Protocol

import torch
import torch.nn as nn


class GenerationState(Protocol):
    log_probs: torch.Tensor  # (B, Q) log p(x_T | x_<T, y) for the next position T

    def step(self, levels: torch.Tensor) -> torch.Tensor: ...

    def reorder(self, index: torch.Tensor) -> "GenerationState": ...


class AutoregressiveModel(nn.Module):
    """Base class of every family. Subclasses set `config` and implement `log_probs`; they override
    `start` with a fast state where one pays, and declare what else they can do."""

    soft_inputs: bool = False
    any_order: bool = False
    # What a person reads in the app's model picker: the family's name and one line on what it is.
    family_name: str = ""
    family_summary: str = ""
    family_paper: str = ""
    trainable: bool = True  # train.py trains it from a recipe's `model` (a Mixture is fitted from trained members)

    @property
    def quantization_levels(self) -> int:
        return self.config.quantization_levels

    @property
    def num_classes(self) -> int:
        """K, the number of conditions (0 = unconditional)."""
        return self.config.cond_channels

    @property
    def sequence_length(self) -> int | None:
        return None

    @property
    def receptive_field(self) -> int | None:
        """How many past values (the start token included) a prediction can read; None: all of them."""
        return None

    def architecture_note(self) -> str:
        """A short clause on the architecture for the model card (e.g. a receptive field); "" for none."""
        return ""

    @classmethod
    def can_start_from(cls, start, config) -> bool:
        """Whether the weights of a trained model of config `start` can start training a model of
        `config` (train.py's train.init_from); by default only when the two configs are equal."""
        return start == config

    def log_probs(self, levels: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError

    def log_likelihood(self, levels: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """levels (B, N) long -> (B, N): log p(x_t | x_<t, y) of the observed values (the training loss)."""
        return self.log_probs(levels, cond).gather(-1, levels.long().unsqueeze(-1)).squeeze(-1)

    def start(self, prefix: torch.Tensor, cond: torch.Tensor | None = None) -> GenerationState:
        return NaiveState(self, prefix, cond)


def check_levels(levels: torch.Tensor, Q: int, name: str = "levels") -> None:
    """A clear ValueError unless `levels` is a (B, T) integer tensor of values in 0..Q-1 (T may be 0)."""
    if levels.dim() != 2:
        raise ValueError(f"{name} must have shape (B, T), got {tuple(levels.shape)}.")
    if levels.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
        raise ValueError(f"{name} must hold integer levels, got dtype {levels.dtype}.")
    if levels.numel() and (levels.min() < 0 or levels.max() >= Q):
        raise ValueError(f"{name} levels must lie in 0..{Q - 1}.")


def check_image_inputs(config, levels: torch.Tensor, cond: torch.Tensor | None,
                       dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor | None]:
    """For a family over whole H x W images (config has height, width, quantization_levels, cond_channels):
    clear ValueErrors unless levels is (B, H*W) in 0..Q-1 and cond is (B, K) (None when K = 0);
    -> (levels as int64, cond in `dtype`)."""
    N = config.height * config.width
    if levels.dim() != 2 or levels.shape[1] != N:
        raise ValueError(f"levels must have shape (B, {N}) (a {config.height}x{config.width} image in raster order), "
                         f"got {tuple(levels.shape)}.")
    levels = levels.long()
    if levels.numel() and (levels.min() < 0 or levels.max() >= config.quantization_levels):
        raise ValueError(f"levels must lie in 0..{config.quantization_levels - 1}.")
    if config.cond_channels == 0:
        if cond is not None:
            raise ValueError("This model is unconditional; pass condition=None.")
    elif cond is None or cond.dim() != 2 or cond.shape != (levels.shape[0], config.cond_channels):
        raise ValueError(f"This model needs a condition of shape ({levels.shape[0]}, {config.cond_channels}), "
                         f"got {None if cond is None else tuple(cond.shape)}.")
    return levels, None if cond is None else cond.to(dtype)


class NaiveState:
    """The reference generation state: keeps the values seen so far and re-runs the model's teacher-forced
    `log_probs` on all of them for every step (O(T) work per step). A fixed-length model reads its
    sequence padded with zeros to its length; causality makes the padding invisible to the row read."""

    def __init__(self, model: AutoregressiveModel, prefix: torch.Tensor, cond: torch.Tensor | None = None,
                 order: torch.Tensor | None = None):
        """order (an `any_order` model only): prefix[:, i] is the value at position order[i]."""
        check_levels(prefix, model.quantization_levels, "prefix")
        if order is not None and (not model.any_order or model.sequence_length is None):
            raise ValueError("order= needs a model of fixed length that declares any_order.")
        self.model, self.seq, self.cond, self.order = model, prefix.long(), cond, order
        self.log_probs = self._next()

    @torch.no_grad()
    def _next(self) -> torch.Tensor | None:
        B, T = self.seq.shape
        N = self.model.sequence_length
        if N is not None and T >= N:
            return None  # the sequence is complete: there is no next position
        padded = torch.zeros(B, (N if N is not None else T + 1), dtype=torch.long, device=self.seq.device)
        if self.order is None:
            padded[:, :T] = self.seq
            return self.model.log_probs(padded, self.cond)[:, T]
        padded[:, self.order[:T]] = self.seq
        return self.model.log_probs(padded, self.cond, order=self.order)[:, self.order[T]]

    def step(self, levels: torch.Tensor) -> torch.Tensor:
        self.seq = torch.cat([self.seq, levels.long().view(-1, 1)], dim=1)
        self.log_probs = self._next()
        return self.log_probs

    def reorder(self, index: torch.Tensor) -> "NaiveState":
        self.seq = self.seq.index_select(0, index)
        if self.cond is not None:
            self.cond = self.cond.index_select(0, index)
        self.log_probs = None if self.log_probs is None else self.log_probs.index_select(0, index)
        return self
