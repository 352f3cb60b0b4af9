"""The discretized logistic mixture likelihood of PixelCNN++ (Salimans, Karpathy, Chen and Kingma 2017):
a pixel's value is a mixture of M logistic distributions on [-1, 1], rounded to the nearest of Q levels.
Level q sits at the bin centre -1 + 2q/(Q-1); a bin runs half a level spacing either side of it, and the
two edge bins take the whole tail (level 0 everything below its upper edge, level Q-1 everything above
its lower edge), so the Q bin masses sum to one exactly and `level_log_probs` returns the whole Q-level
distribution, not only the probability of the observed value.

Numerics, after the original (pixel_cnn_pp/nn.py), finite in every branch:
- log-scales have a floor (-7, as in the original), so 1/s stays finite;
- edge bins are log sigma(b) (the lower tail) and log sigma(-a) (the upper tail), each computed as
  min(z, 0) - log(1 + e^-|z|): finite for any finite z, and neither cancels;
- an interior bin's mass sigma(b) - sigma(a) is where the original falls back: it subtracts two sigmoids,
  which cancels to nothing in float32 for a bin far in a component's tail, so below a mass of 1e-5 it
  uses the log density at the bin centre plus the log of the bin width. Here the difference is taken
  in log space, which does not cancel:
      log(sigma(b) - sigma(a)) = log sigma(b) + log sigma(-a) + log(1 - exp(-(b - a))),
  exact at any distance from the component's mean (the original's fallback is off by a factor of up to
  sinh(d/2)/(d/2) for a bin d scales wide, about 2 nats at Q=256 with log-scales at the floor, far more
  at Q=5). The last term depends only on the bin width in the component's own units, d = (b - a), one
  value per pixel and component; as d -> 0 it tends to log d, and the whole expression to the log
  density at the bin times the bin width: the original's fallback is the limit of this formula, and it
  is what remains where d would round to zero (d has a floor at the smallest normal float).
Bin edges are shared by neighbouring bins, so a component costs one exp and one log1p per edge: Q - 1 per pixel.

With Q = 2 there is one edge (at 0) and no interior bin: the mixture is a Bernoulli whose probability
is sum_m w_m sigma(mu_m / s_m), 3M numbers per pixel for one probability that a 2-way softmax gives
with one logit. It works (the tests use Q=2 and Q=5), but gains nothing over a softmax there.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

LOG_SCALE_FLOOR = -7.0  # the original's floor: a component no narrower than e^-7 ~ 0.0009 of the [-1, 1] range


def split_params(params: torch.Tensor, components: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """params (..., 3M) -> mixture log-weights, means, log-scales (each (..., M)); log-scales floored."""
    if params.shape[-1] != 3 * components:
        raise ValueError(f"A mixture of {components} logistics needs {3 * components} parameters per pixel, "
                         f"got {params.shape[-1]}.")
    logits, means, log_scales = params.split(components, dim=-1)
    return F.log_softmax(logits, dim=-1), means, log_scales.clamp(min=LOG_SCALE_FLOOR)


def bin_centres(Q: int, dtype=torch.float32, device=None) -> torch.Tensor:
    """(Q,) the levels 0..Q-1 mapped to [-1, 1]: the value a level stands for."""
    if Q < 2:
        raise ValueError(f"A discretized logistic mixture needs at least 2 levels, got Q={Q}.")
    return torch.linspace(-1.0, 1.0, Q, dtype=dtype, device=device)


def level_log_probs(params: torch.Tensor, Q: int, components: int) -> torch.Tensor:
    """params (..., 3M) (mixture logits, means, log-scales) -> (..., Q) log p(level q), normalized over q.

    Memory and time go as (..., M, Q): one log-sigmoid per component and bin edge; the backward pass is
    written out (`_LevelLogProbs`) because autograd's version of these few lines makes some forty passes
    over (..., M, Q) and a Q=256 model spent most of its training step in them."""
    log_w, means, log_scales = split_params(params, components)
    edges = bin_centres(Q, params.dtype, params.device)[:-1] + 1.0 / (Q - 1)  # (Q-1,) upper edges of bins 0..Q-2
    shape = params.shape[:-1]
    M = components
    out = _LevelLogProbs.apply(log_w.reshape(-1, M), means.reshape(-1, M), log_scales.reshape(-1, M), edges)
    return out.reshape(*shape, Q)


def observed_log_probs(params: torch.Tensor, levels: torch.Tensor, Q: int, components: int) -> torch.Tensor:
    """params (..., 3M) and levels (...) long -> (...) log p(the observed level): the same bin masses as
    `level_log_probs` (same formulas, same floors), for one bin per pixel instead of all Q, so a training
    step costs M log-sigmoids per pixel rather than M (Q - 1). Plain autograd: there is nothing to spare."""
    log_w, means, log_scales = split_params(params, components)
    if levels.shape != params.shape[:-1]:
        raise ValueError(f"levels {tuple(levels.shape)} do not match the parameters' pixels {tuple(params.shape[:-1])}.")
    inv_s = torch.exp(-log_scales)
    half = 1.0 / (Q - 1)
    centre = (levels.to(params.dtype) * (2 * half) - 1.0)[..., None]  # (..., 1)
    z_up = (centre + half - means) * inv_s  # the bin's upper edge in each component's units
    z_lo = (centre - half - means) * inv_s
    first, last = (levels == 0)[..., None], (levels == Q - 1)[..., None]
    zero = torch.zeros((), dtype=params.dtype, device=params.device)
    d = (2 * half * inv_s).clamp(min=torch.finfo(params.dtype).tiny)
    lm = (log_w
          + torch.where(last, zero, F.logsigmoid(z_up))  # the top bin has no upper edge
          + torch.where(first, zero, F.logsigmoid(-z_lo))  # the bottom bin has no lower edge
          + torch.where(first | last, zero, torch.log(-torch.expm1(-d))))
    return torch.logsumexp(lm, dim=-1)


class _LevelLogProbs(torch.autograd.Function):
    """(P, M) log-weights, means, floored log-scales and the (Q-1,) bin edges -> (P, Q) log p(level).

    log mass of bin q under component m, with z_k = (edge_k - mean) / s and d = (spacing of the levels) / s:
        q = 0:        log sigma(z_0)
        0 < q < Q-1:  log sigma(z_q) + log sigma(-z_{q-1}) + log(1 - e^-d)
        q = Q-1:      log sigma(-z_{Q-2})
    The mixture is a logsumexp over m with the log-weights."""

    @staticmethod
    def forward(ctx, log_w, means, log_scales, edges):
        P, M = means.shape
        K = edges.shape[0]
        inv_s = torch.exp(-log_scales)
        z = (edges - means[..., None]) * inv_s[..., None]  # (P, M, K)
        # log sigma(z) = min(z, 0) - log(1 + e^-|z|) and log sigma(-z) = min(-z, 0) - log(1 + e^-|z|): both exact
        # (log sigma(-z) = log sigma(z) - z would cancel in float32 for a component far above an edge)
        t = z.abs().neg_().exp_().log1p_()
        log_cdf = z.clamp(max=0.0).sub_(t)
        d = (2.0 / K * inv_s).clamp(min=torch.finfo(means.dtype).tiny)  # the spacing 2/(Q-1) in the component's units
        log_width = torch.log(-torch.expm1(-d))  # (P, M)
        lm = torch.empty(P, M, K + 1, dtype=means.dtype, device=means.device)
        torch.add(log_cdf, (log_w + log_width)[..., None], out=lm[..., :K])
        lm[..., 0] -= log_width  # the edge bins have no lower (upper) side
        lm[..., K] = log_w
        lm[..., 1:].sub_(z.clamp(min=0.0)).sub_(t)  # + log sigma(-z) of the lower edge
        top = lm.amax(dim=1)  # (P, Q) a shift so that exp cannot underflow every component at once
        lp = (lm - top[:, None]).exp_().sum(dim=1).log_().add_(top)
        ctx.save_for_backward(lm, lp, z, inv_s, d)
        return lp

    @staticmethod
    def backward(ctx, g):
        lm, lp, z, inv_s, d = ctx.saved_tensors
        K = z.shape[-1]
        gr = (lm - lp[:, None]).exp_().mul_(g[:, None])  # g times the responsibility of each component (P, M, Q)
        d_log_w = gr.sum(dim=-1)
        d_log_width = gr[..., 1:K].sum(dim=-1)
        # d/dz_k of log sigma(z_k) is sigma(-z_k) = 1 - sigma(z_k); of log sigma(-z_k) it is -sigma(z_k)
        upper, lower = gr[..., :K], gr[..., 1:]
        dz = upper - torch.sigmoid(z) * (upper + lower)
        d_means = -(dz.sum(dim=-1)) * inv_s
        # z = (edge - mean) / s: dz/dlog s = -z; log_width = log(1 - e^-d), d = spacing / s: d log_width / dlog s = -d / (e^d - 1)
        d_log_scales = -(dz * z).sum(dim=-1) - d_log_width * d / torch.expm1(d)
        return d_log_w, d_means, d_log_scales, None
