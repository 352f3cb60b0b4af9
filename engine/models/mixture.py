"""A mixture of autoregressive models over the same levels and conditions: at every position

    p(x_t | x_<t, y) = sum_m w_m p_m(x_t | x_<t, y),

an ensemble by averaging the members' next-value probabilities. Each mixed conditional is a
distribution, so their product is a normalized model of the whole sequence (not a mixture of the
members' joint distributions): likelihoods, Bayes-rule classification, sampling and completion work on
it unchanged. Its "logits" are the mixture's log-probabilities, so softmax(logits) is the mixture.

The members are stored inside it (config.json lists their configs and the mixing weights,
model.safetensors their parameters as members.0.*, members.1.*, ...), so a mixture folder loads on its own. Its
generation state (`Mixture.start`) is one per-call state per member, each member's own fast state."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from engine.models.base import AutoregressiveModel


@dataclass
class MixtureConfig:
    members: list  # [{"model_type": "wavenet", "model": {...that model's config...}}, ...], at least two
    weights: list  # mixing weights w_m > 0 that sum to 1, one per member

    def __post_init__(self):
        from engine.models import build_config  # the registry imports this module

        if not isinstance(self.members, (list, tuple)) or len(self.members) < 2:
            raise ValueError(f"MixtureConfig.members must list at least two models, got {self.members!r}.")
        configs = []
        for i, member in enumerate(self.members):
            if not isinstance(member, dict) or set(member) != {"model_type", "model"}:
                raise ValueError(f"MixtureConfig.members[{i}] must be an object with exactly the keys 'model_type' and 'model'.")
            if member["model_type"] == "mixture":
                raise ValueError(f"MixtureConfig.members[{i}] is itself a mixture; list its members instead.")
            configs.append(build_config(member["model_type"], member["model"]))
        self.members = [dict(m) for m in self.members]
        self.member_configs = configs  # not a field: asdict() saves the members as written
        if (not isinstance(self.weights, (list, tuple)) or len(self.weights) != len(configs)
                or not all(isinstance(w, (int, float)) and not isinstance(w, bool) and w > 0 for w in self.weights)):
            raise ValueError(f"MixtureConfig.weights must be {len(configs)} positive numbers, one per member, got {self.weights!r}.")
        if abs(sum(self.weights) - 1.0) > 1e-6:
            raise ValueError(f"MixtureConfig.weights must sum to 1, got {self.weights!r} (sum {sum(self.weights)}).")
        self.weights = [float(w) for w in self.weights]
        for name in ("quantization_levels", "cond_channels"):
            values = {getattr(c, name) for c in configs}
            if len(values) > 1:
                raise ValueError(f"The members of a mixture must agree on {name}, got {sorted(values)}.")

    @property
    def quantization_levels(self) -> int:
        return self.member_configs[0].quantization_levels

    @property
    def cond_channels(self) -> int:
        return self.member_configs[0].cond_channels


class Mixture(AutoregressiveModel):
    family_name = "Mixture"
    family_summary = "several trained models whose next-pixel probabilities are averaged: better figures, the sum of their costs"
    trainable = False  # made by a mixture recipe from trained members (engine/recipes/mixture.py)

    def __init__(self, config: MixtureConfig):
        super().__init__()
        from engine.models import MODEL_REGISTRY

        self.config = config
        self.members = nn.ModuleList(MODEL_REGISTRY[m["model_type"]][0](c) for m, c in zip(config.members, config.member_configs))
        # not in model.safetensors (the mixing weights are config); a buffer so that .to(device) moves it
        # (float64, so that a model in double precision mixes exactly; mix() casts to the logits' dtype)
        self.register_buffer("log_weights", torch.tensor([math.log(w) for w in config.weights], dtype=torch.float64),
                             persistent=False)

    @property
    def receptive_field(self) -> int | None:
        """The widest member's (None if any member reads its whole past)."""
        fields = [m.receptive_field for m in self.members]
        return None if None in fields else max(fields)

    def mix(self, logits: list[torch.Tensor], dim: int) -> torch.Tensor:
        """The members' logits (each with the levels on `dim`) -> the mixture's log-probabilities."""
        log_w = self.log_weights.to(logits[0].dtype)
        return torch.logsumexp(torch.stack([F.log_softmax(z, dim=dim) + log_w[m] for m, z in enumerate(logits)]), dim=0)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None, return_layer_inputs: bool = False, offset: int = 0):
        """x (B, Q, T) one-hot inputs, cond (B, K) -> the mixture's log-probabilities (B, Q, T)."""
        if return_layer_inputs:
            raise ValueError("A mixture has no single stack of layers; Mixture.start builds one state per member.")
        return self.mix([m(x, cond, offset=offset) for m in self.members], dim=1)

    def log_probs(self, levels: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """Levels (B, N) -> the mixture's log p(x_t | x_<t, y) (B, N, Q), from each member's own."""
        return self.mix([m.log_probs(levels, cond) for m in self.members], dim=-1)

    @property
    def sequence_length(self) -> int | None:
        lengths = {m.sequence_length for m in self.members} - {None}
        return lengths.pop() if lengths else None

    def start(self, prefix: torch.Tensor, cond: torch.Tensor | None = None) -> "MixtureState":
        """One state per member after prefix (B, T0), stepped together."""
        return MixtureState(self, [m.start(prefix, cond) for m in self.members])

    @torch.no_grad()
    def logits_from_levels(self, levels: torch.Tensor, cond: torch.Tensor | None = None, offset: int = 0) -> torch.Tensor:
        """Input levels (B, T) -> the mixture's log-probabilities (B, T, Q), each member on its fast path."""
        return self.mix([m.logits_from_levels(levels, cond, offset) for m in self.members], dim=-1)


class MixtureState:
    """Per-call state of a Mixture: one state per member, stepped together; `log_probs` (B, Q) is the
    mixture's log p(next | past, y)."""

    def __init__(self, model: Mixture, states: list):
        self.model, self.states = model, states
        self.log_probs = self._mix()

    def _mix(self) -> torch.Tensor | None:
        if self.states[0].log_probs is None:  # a fixed-length sequence is complete
            return None
        return self.model.mix([s.log_probs for s in self.states], dim=-1)

    def step(self, levels: torch.Tensor) -> torch.Tensor:
        for s in self.states:
            s.step(levels)
        self.log_probs = self._mix()
        return self.log_probs

    def reorder(self, index: torch.Tensor) -> "MixtureState":
        for s in self.states:
            s.reorder(index)
        self.log_probs = None if self.log_probs is None else self.log_probs.index_select(0, index)
        return self
