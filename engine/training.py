"""Training objectives. For every family: the teacher-forced negative log-likelihood through the
family interface (`model.log_probs`, engine/models/base.py). For families with soft inputs (WaveNet),
the same loss on their own fast path, plus the n-step unrolled loss of
cheind/autoregressive, where from O rolling origins the model feeds back its own Gumbel-softmax
samples (Jang et al. 2017) for H steps so gradients flow through them. The origins are batched into
the batch dimension and unrolled with the fast generator's one-column step (Paine et al. 2016),
primed from the teacher-forced forward pass, so unrolling costs O*H columns instead of O*H forwards.

For class-conditional models there is also a Bayes-rule classification term (a hybrid generative /
discriminative objective): the cross-entropy of p(y | x) = softmax_k log p(x | y=k), each log p(x | y=k)
a sum of teacher-forced pixel log-likelihoods, so the model is pushed to make the true class's sequence
likelier than the other classes' - the quantity its Bayes classifier compares."""

from __future__ import annotations

from contextlib import contextmanager

import torch
import torch.nn.functional as F

import torch.nn as nn

from engine.encoding import dequantize, one_hot
from engine.models.base import AutoregressiveModel
from engine.sampling import gumbel_noise, gumbel_softmax



class LogProbs(nn.Module):
    """A model's `log_likelihood` (the observed values' log-probabilities, what the loss needs) as a
    module's forward: DistributedDataParallel wraps forward() only."""

    def __init__(self, model: AutoregressiveModel):
        super().__init__()
        self.model = model

    def forward(self, levels: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        return self.model.log_likelihood(levels, cond)


def _class_rows(levels: torch.Tensor, cond: torch.Tensor, class_rows: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The batch plus its first `class_rows` rows once per class (rows b-major: b * K + k) and their conditions."""
    B, K = cond.shape
    if not 1 <= class_rows <= B:
        raise ValueError(f"class_rows must lie in 1..{B}, got {class_rows}.")
    extra = levels[:class_rows].repeat_interleave(K, dim=0)
    extra_cond = torch.eye(K, dtype=cond.dtype, device=cond.device).repeat(class_rows, 1)
    return torch.cat([levels, extra]), torch.cat([cond, extra_cond])


def _bayes_loss(ll: torch.Tensor, cond: torch.Tensor, class_rows: int, temperature: float) -> torch.Tensor:
    """log p(x | y=k) (class_rows * K,) rows b-major -> cross-entropy of softmax_k(log p(x | k) / T) against the true class."""
    K = cond.shape[1]
    return F.cross_entropy(ll.view(class_rows, K) / temperature, cond[:class_rows].argmax(dim=1))


def training_losses(model: AutoregressiveModel, levels: torch.Tensor, cond: torch.Tensor | None = None, class_rows: int = 0,
                    temperature: float = 1.0, forward=None):
    """The teacher-forced loss of a batch of level sequences (B, N) (mean NLL per predicted value) and,
    with class_rows > 0, the Bayes-rule classification loss of its first class_rows sequences, all in one
    forward. -> (loss, class loss or None, cache): for a family with soft inputs the cache is
    (its input sequence, logits, layer inputs) of its own fast path, which `unrolled_loss` reuses; for any
    other family the loss goes through `log_likelihood` and the cache is None. `forward`: what runs the model
    (e.g. a DistributedDataParallel wrapper of the model, or of LogProbs(model) for other families)."""
    if model.soft_inputs:
        seq = model.input_sequence(levels)
        if class_rows:
            loss, loss_cls, logits, inputs = teacher_forced_with_classes(model, seq, cond, class_rows, forward, temperature)
        else:
            (loss, logits, inputs), loss_cls = teacher_forced(model, seq, cond, forward), None
        return loss, loss_cls, (seq, logits, inputs)
    B = levels.shape[0]
    rows, row_cond = (levels, cond) if not class_rows else _class_rows(levels, cond, class_rows)
    ll = (forward or model.log_likelihood)(rows, row_cond)  # (rows, N): log p of the observed values
    loss = -ll[:B].mean()
    loss_cls = _bayes_loss(ll[B:].sum(dim=1), cond, class_rows, temperature) if class_rows else None
    return loss, loss_cls, None


def logits_dtype(model) -> torch.dtype:
    return next(model.parameters()).dtype


def teacher_forced(model: AutoregressiveModel, seq: torch.Tensor, cond: torch.Tensor | None = None, forward=None):
    """A soft-inputs model's fast path: its input sequence seq (B, T) (`model.input_sequence`) -> (mean CE
    loss, logits (B, Q, T-1), layer inputs); column t predicts seq[:, t+1]. `forward` runs the model (e.g. its DistributedDataParallel wrapper); default: the model itself."""
    Q = model.config.quantization_levels
    logits, inputs = (forward or model)(one_hot(seq[:, :-1], Q, logits_dtype(model)), cond, return_layer_inputs=True)
    return F.cross_entropy(logits, seq[:, 1:]), logits, inputs


def teacher_forced_with_classes(model: AutoregressiveModel, seq: torch.Tensor, cond: torch.Tensor, class_rows: int, forward=None,
                                temperature: float = 1.0):
    """Teacher-forced CE on (seq, cond) as `teacher_forced`, plus the Bayes-rule classification loss of
    the first `class_rows` sequences, all in ONE forward: those sequences are appended once per class.
    seq (B, T) levels, cond (B, K) one-hot -> (CE, classification CE, logits (B, Q, T-1), layer inputs (B rows)).
    With a uniform prior, p(y=k | x) = softmax_k sum_t log p(x_t+1 | x_<=t, k). A temperature T > 1 scores
    softmax_k(log p(x | k) / T) instead: the classifier's decision is the same, but training images the
    model already classifies right by a margin of a few nats still give a gradient (a smooth margin loss),
    where at T = 1 their loss is ~exp(-margin) and vanishes."""
    B = seq.shape[0]
    Q = model.config.quantization_levels
    all_seq, all_cond = _class_rows(seq, cond, class_rows)
    logits, inputs = (forward or model)(one_hot(all_seq[:, :-1], Q, logits_dtype(model)), all_cond, return_layer_inputs=True)
    loss_tf = F.cross_entropy(logits[:B], seq[:, 1:])
    ll = -F.cross_entropy(logits[B:], all_seq[B:, 1:], reduction="none").sum(dim=1)  # log p(x | y=k)
    return loss_tf, _bayes_loss(ll, cond, class_rows, temperature), logits[:B], [x[:B] for x in inputs]


def origin_targets(seq: torch.Tensor, origins: torch.Tensor, horizon: int) -> torch.Tensor:
    """(B, T), origins (O,) -> (B*O, H): seq[b, o+1 .. o+H], rows b-major as in FastState.from_forward."""
    idx = origins[:, None] + 1 + torch.arange(horizon, device=seq.device)[None, :]
    return seq[:, idx].reshape(-1, horizon)


def check_origins(origins: torch.Tensor, horizon: int, length: int) -> None:
    if origins.numel() == 0 or origins.min() < 0 or origins.max() + horizon > length - 1:
        raise ValueError(f"Origins must lie in 0..{length - 1 - horizon} for horizon {horizon} on sequences of length {length}.")


def unrolled_loss(
    model: AutoregressiveModel,
    seq: torch.Tensor,
    cond: torch.Tensor | None,
    logits: torch.Tensor,
    inputs: list[torch.Tensor],
    origins: torch.Tensor,
    horizon: int,
    tau: float = 1.0,
    noise: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    hard: bool = True,
) -> torch.Tensor:
    """Mean CE of H-step rollouts from each origin o (origins (O,), column indices of the teacher-forced
    pass). Step 1 uses the teacher-forced logits at o; steps 2..H feed back Gumbel-softmax samples at
    temperature tau: one-hot straight-through samples (hard) or the soft relaxation itself (hard=False,
    as cheind/autoregressive does at tau 2/3). noise (B*O, H-1, Q) fixes the Gumbel draws."""
    check_origins(origins, horizon, seq.shape[1])
    state = model.unroll_state(inputs, logits, cond, origins, steps=horizon - 1)
    targets = origin_targets(seq, origins, horizon)
    if noise is None:
        noise = gumbel_noise((targets.shape[0], horizon - 1, logits.shape[1]), generator, seq.device)
    step_logits = [state.logits]
    for h in range(horizon - 1):
        sample = gumbel_softmax(step_logits[-1], tau, hard=hard, noise=noise[:, h])
        step_logits.append(state.step(sample))
    return F.cross_entropy(torch.stack(step_logits, dim=2), targets)


@torch.no_grad()
def greedy_rollouts(model: AutoregressiveModel, seq: torch.Tensor, cond: torch.Tensor | None, origins: torch.Tensor,
                    horizon: int) -> torch.Tensor:
    """Greedy H-step forecasts from every origin o (having seen seq[:, :o+1]), through the model's own
    generation state (`model.start`): -> (B*O, H) levels, rows b-major."""
    preds = []
    for o in origins.tolist():
        state = model.start(seq[:, :o + 1], cond)
        steps = [state.log_probs.argmax(-1)]
        for _ in range(horizon - 1):
            steps.append(state.step(steps[-1]).argmax(-1))
        preds.append(torch.stack(steps, dim=1))  # (B, H)
    return torch.stack(preds, dim=1).reshape(-1, horizon)


@torch.no_grad()
def evaluate_series(
    model: AutoregressiveModel,
    seq: torch.Tensor,
    cond: torch.Tensor | None,
    low: float,
    high: float,
    num_origins: int = 16,
    accuracy_horizon: int = 8,
    mae_horizons: tuple[int, ...] = (1, 8, 32, 128),
    batch_size: int = 64,
) -> dict[str, float]:
    """Teacher-forced next-value accuracy (every value but the first, which has no past), greedy
    rolling-origin accuracy over `accuracy_horizon` steps and forecast mean absolute error (in signal
    units) at several horizons; origins evenly spaced after the first R samples (the model's receptive
    field, 0 for a model that sees its whole past). Any family, through the model interface."""
    model.eval()
    Q = model.config.quantization_levels
    T = seq.shape[1]
    mae_horizons = tuple(h for h in mae_horizons if h <= (T - 2) // 2) or (1,)
    accuracy_horizon = min(accuracy_horizon, (T - 2) // 2)
    H = max(accuracy_horizon, *mae_horizons)
    first = max(0, min(model.receptive_field or 0, T - 2 - H))
    origins = torch.linspace(first, T - 2 - H, num_origins).long().to(seq.device)
    correct = count = 0
    ro_hits = []
    abs_err = {h: [] for h in mae_horizons}
    for start in range(0, seq.shape[0], batch_size):
        s = seq[start:start + batch_size].long()
        c = None if cond is None else cond[start:start + batch_size]
        log_probs = model.log_probs(s, c)  # (B, T, Q)
        correct += (log_probs[:, 1:].argmax(-1) == s[:, 1:]).sum().item()
        count += s[:, 1:].numel()
        preds = greedy_rollouts(model, s, c, origins, H)
        targets = origin_targets(s, origins, H)
        ro_hits.append((preds[:, :accuracy_horizon] == targets[:, :accuracy_horizon]).float().flatten())
        for h in mae_horizons:
            err = dequantize(preds[:, h - 1], Q, low, high) - dequantize(targets[:, h - 1], Q, low, high)
            abs_err[h].append(err.abs())
    metrics = {
        "teacher_forced_accuracy": correct / count,
        f"rolling_origin_accuracy_{accuracy_horizon}": torch.cat(ro_hits).mean().item(),
    }
    for h in mae_horizons:
        metrics[f"mae_h{h}"] = torch.cat(abs_err[h]).mean().item()
    return metrics


class WeightAverage:
    """An exponential moving average of a model's parameters (Polyak averaging; PixelCNN++ evaluates
    with a 0.9995 average). The decay warms up as min(decay, (1 + n) / (10 + n)) after n updates, so
    early averages are not dominated by the starting weights. Per training run, never on the model."""

    def __init__(self, model: torch.nn.Module, decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"decay must lie in (0, 1), got {decay!r}.")
        self.decay = decay
        self.restart(model)

    def restart(self, model: torch.nn.Module) -> None:
        """Start the average over from the model's current weights."""
        self.updates = 0
        self.params = [p.detach().clone() for p in model.parameters()]

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for avg, p in zip(self.params, model.parameters()):
            avg.lerp_(p.detach(), 1.0 - d)

    def state_dict(self) -> dict:
        return {"updates": self.updates, "params": [p.clone() for p in self.params]}

    def load_state_dict(self, state: dict) -> None:
        params = state["params"]
        if len(params) != len(self.params) or any(a.shape != b.shape for a, b in zip(params, self.params)):
            raise ValueError("The saved weight average does not match this model's parameters.")
        self.updates = int(state["updates"])
        self.params = [p.to(a.device, a.dtype).clone() for p, a in zip(params, self.params)]

    @torch.no_grad()
    def copy_to(self, model: torch.nn.Module) -> None:
        for avg, p in zip(self.params, model.parameters()):
            p.copy_(avg)

    @contextmanager
    def applied(self, model: torch.nn.Module):
        """Within the block the model holds the averaged weights; its own are restored after."""
        saved = [p.detach().clone() for p in model.parameters()]
        self.copy_to(model)
        try:
            yield model
        finally:
            with torch.no_grad():
                for p, w in zip(model.parameters(), saved):
                    p.copy_(w)
