"""Dependency maps: which earlier pixels one prediction of an autoregressive model reads, measured
through the model interface (engine/models/base.py), for any family. It is the picture behind the
families' receptive fields: PixelCNN's blind spot (van den Oord et al. 2016a), the Gated PixelCNN's
full context (van den Oord et al. 2016b), WaveNet's 1-D field wrapping around image rows, MADE's order.

Two measurements, chosen by what the model declares, never by its family:
- `soft_inputs`: the gradient |d log p(x_t | x_<t, y) / d input| of the observed value's log-probability
  with respect to every input column (one forward and one backward through its relaxed one-hot inputs);
- otherwise perturbation: every earlier pixel's level is changed in turn (flipped for Q=2, moved by Q/2 for
  more levels), all of them batched, and the map holds the total variation between row t's distribution
  and the unperturbed one.
The gradient is measured over every input, so a causal model's map is zero after t because the model never
reads those pixels; perturbation feeds the pixels before t only (the generation state's contract), so
there it is zero by construction, and the interface tests (fast state == log_probs) carry the proof."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from engine.encoding import sequence_to_image
from engine.images import check_count, check_digits, conditions, encode_images, image_config, model_device
from engine.threads import task_threads

METHODS = ("gradient", "perturbation")
PERTURBATION_ROWS = 64  # prefixes per generation state: bounds memory (a WaveNet state primes ~3 MB per row)


def dependency_method(model) -> str:
    """'gradient' for a model that declares `soft_inputs`, else 'perturbation'."""
    return "gradient" if model.soft_inputs else "perturbation"


@task_threads("posterior")
def dependency_map(model, image, row: int, col: int, digit: int | None = None) -> torch.Tensor:
    """How much the prediction of pixel (row, col) of `image` (H, W), 0..255, under `digit` depends on each
    pixel: -> (H, W) float on the CPU, >= 0, zero wherever the prediction does not read the pixel (every
    pixel at or after (row, col) in scan order for a causal model). Units depend on the method
    (`dependency_method`): gradient norm or total variation; compare shapes, not values, across models."""
    c = image_config(model)
    H, W = c["H"], c["W"]
    for name, value, size in (("row", row, H), ("col", col, W)):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < size:
            raise ValueError(f"{name} must be a whole number from 0 to {size - 1} (the image is {H}x{W}), got {value!r}.")
    device = model_device(model)
    levels = encode_images(model, image)[0].to(device)  # (N,) in scan order
    index = scan_positions(H, W, c["scan_order"])
    t = int(index[row, col])
    cond = None
    if c["K"]:
        if digit is None:
            raise ValueError(f"This model is conditioned on the digit; pass digit= a whole number from 0 to {c['K'] - 1}.")
        cond = conditions(model, torch.tensor(check_digits(model, [digit]), device=device))
    elif digit is not None:
        raise ValueError("This model is unconditional; pass digit=None.")
    values = dependency_on_levels(model, levels, t, cond)  # (N,) by scan position
    return values[index.reshape(-1)].reshape(H, W).cpu()


def scan_positions(H: int, W: int, scan_order: str) -> torch.Tensor:
    """(H, W) long: the position of every pixel in the scan order (the image whose sequence is 0..N-1)."""
    return sequence_to_image(torch.arange(H * W)[None], H, W, scan_order)[0]


def dependency_on_levels(model, levels: torch.Tensor, t: int, cond: torch.Tensor | None = None, start=None) -> torch.Tensor:
    """The core of `dependency_map` on one sequence: levels (N,) long, position t, cond (1, K) or None ->
    (N,) float, the dependency of row t of `model.log_probs` on each position. start: the state maker the
    perturbation reads row t from (default `model.start`)."""
    if levels.dim() != 1:
        raise ValueError(f"levels must have shape (N,), got {tuple(levels.shape)}.")
    N = levels.shape[0]
    t = check_count("t", t, 0, N - 1)
    if model.soft_inputs:
        return _by_gradient(model, levels, t, cond)
    return _by_perturbation(model, levels, t, cond, start)


def _by_gradient(model, levels: torch.Tensor, t: int, cond: torch.Tensor | None) -> torch.Tensor:
    """|d log p(x_t = levels[t] | x_<t, y) / d x_s|, the norm over the Q levels of the relaxed one-hot input
    column of every position s (the soft-inputs capability: input_sequence and forward)."""
    N, Q = levels.shape[0], model.quantization_levels
    seq = model.input_sequence(levels[None])  # (1, T): any start tokens, then x_0..x_{N-1}
    offset = seq.shape[1] - N  # input column of x_s is offset + s; forward's column c predicts column c + 1
    out = torch.zeros(N, dtype=torch.float32)
    if offset + t - 1 < 0:  # nothing before x_t to read: its distribution is fixed
        return out
    dtype = next(model.parameters()).dtype
    x = F.one_hot(seq[:, :-1], Q).to(dtype).transpose(1, 2).clone().requires_grad_(True)  # (1, Q, T-1)
    with torch.enable_grad():  # the model stays as it is (eval: shared between sessions, never switched here)
        logits = model(x, cond, return_layer_inputs=True)[0]  # (1, Q, T-1)
        log_p = F.log_softmax(logits[0, :, offset + t - 1].float(), dim=0)[levels[t]]
        (grad,) = torch.autograd.grad(log_p, x)
    norms = grad[0].float().norm(dim=0).cpu()  # (T-1,) per input column
    columns = norms[offset:]  # x_0 .. x_{N-2}; x_{N-1} is never an input
    out[:columns.shape[0]] = columns
    return out


@torch.no_grad()
def _by_perturbation(model, levels: torch.Tensor, t: int, cond: torch.Tensor | None, start=None) -> torch.Tensor:
    """Total variation between p(x_t | x_<t, y) with each earlier position's level changed and without.
    Row t is read from the model's generation state after the prefix x_<t (`model.start(prefix).log_probs`,
    which the interface makes equal to row t of `log_probs`; the naive state is `log_probs` itself, and
    start= takes another state maker, e.g. NaiveState, for tests): a state need not compute every row, so it
    is never dearer than the whole forward. Positions >= t are never fed to the state: zero."""
    N, Q = levels.shape[0], model.quantization_levels
    out = torch.zeros(N, dtype=torch.float32)
    if t == 0:
        return out
    start = start or model.start
    prefix = levels[:t]
    rows = prefix[None].repeat(t + 1, 1)  # row 0 unperturbed, row 1 + s with position s changed
    s = torch.arange(t, device=levels.device)
    rows[1 + s, s] = (prefix + Q // 2) % Q
    probs = []
    for a in range(0, rows.shape[0], PERTURBATION_ROWS):
        part = rows[a:a + PERTURBATION_ROWS]
        # float64 from the log-probabilities: a saturated prediction's small changes do not round to zero
        probs.append(start(part, None if cond is None else cond.expand(part.shape[0], -1)).log_probs.double().exp())
    probs = torch.cat(probs)
    out[:t] = (0.5 * (probs[1:] - probs[0]).abs().sum(dim=-1)).float().cpu()
    return out
