"""Figure builders: numpy in, plotly figure out. No widgets, no engine calls."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")
FONT = 16  # legible from the back of a room
INK = {"light": "#262730", "dark": "#fafafa"}  # text and the true curve: Streamlit's own text colours


def ink(theme: str | None) -> str:
    """The colour that reads on Streamlit's background in theme 'light' or 'dark' (None: light)."""
    return INK.get(theme or "light", INK["light"])


def model_colors(names) -> dict[str, str]:
    """A stable colour per model, so overlaid and side-by-side views agree."""
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(names)}


def _rgba(hex_color: str, alpha: float) -> str:
    r, g, b = (int(hex_color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def forecast_figure(
    t: np.ndarray | None,
    truth: np.ndarray | None,
    n_observed: int,
    start: int,
    dt: float,
    forecasts: dict[str, tuple[np.ndarray, dict[str, np.ndarray]]],
    colors: dict[str, str] | None = None,
    y_range: tuple[float, float] | None = None,
    title: str | None = None,
    theme: str | None = None,
) -> go.Figure:
    """The true curve t, truth (T,) (dashed), its observed first n_observed samples (solid), and per
    model its trajectories (N, H) as thin translucent lines plus the mean and a mean +/- 2 std band
    from `summary`. Forecast step h sits at sample index start + h. The x axis ends with the forecast.
    The true curve is drawn in the ink of Streamlit's `theme` ('light' or 'dark'); the legend sits below
    the plot, so a title never covers it."""
    colors = colors or model_colors(forecasts)
    fig = go.Figure()
    for name, (trajectories, summary) in forecasts.items():
        color = colors[name]
        N, H = trajectories.shape
        x = (start + np.arange(H)) * dt
        # All trajectories as one trace, separated by gaps: one legend entry, fast to draw.
        xs = np.concatenate([np.append(x, np.nan) for _ in range(N)])
        ys = np.concatenate([np.append(row, np.nan) for row in trajectories])
        fig.add_trace(go.Scatter(x=xs, y=ys, name=f"{name}: {N} samples", legendgroup=name, mode="lines",
                                 line=dict(color=_rgba(color, 0.25), width=1), connectgaps=False, hoverinfo="skip"))
        fig.add_trace(go.Scatter(x=np.concatenate([x, x[::-1]]), y=np.concatenate([summary["upper"], summary["lower"][::-1]]),
                                 name=f"{name}: mean ± 2σ", legendgroup=name, fill="toself", mode="lines",
                                 fillcolor=_rgba(color, 0.15), line=dict(width=0), hoverinfo="skip"))
        fig.add_trace(go.Scatter(x=x, y=summary["mean"], name=f"{name}: mean", legendgroup=name, mode="lines",
                                 line=dict(color=color, width=2.5)))
    if truth is not None:  # drawn last, so the truth stays visible on top of the samples
        fig.add_trace(go.Scatter(x=t, y=truth, name="true curve", mode="lines", legendrank=1,
                                 line=dict(color=ink(theme), width=1.5, dash="dash")))
        if n_observed:
            fig.add_trace(go.Scatter(x=t[:n_observed], y=truth[:n_observed], name="observed", mode="lines", legendrank=2,
                                     line=dict(color=ink(theme), width=3)))
    if n_observed and t is not None:
        fig.add_vline(x=n_observed * dt, line=dict(color="gray", width=1, dash="dot"))
    fig.update_layout(
        title=title, height=520, margin=dict(l=10, r=10, t=50 if title else 20, b=10), font=dict(size=FONT),
        xaxis_title="t (s)", yaxis_title="y", legend=dict(orientation="h", yanchor="top", y=-0.15, x=0),
    )
    if y_range is not None:
        fig.update_yaxes(range=list(y_range))
    if forecasts:  # the curve may run far past the forecast: frame what was sampled
        end = max(start + trajectories.shape[1] for trajectories, _ in forecasts.values())
        fig.update_xaxes(range=[0, end * dt])
    return fig


# ---------------------------------------------------------------------------------------------------
# MNIST

DIGIT_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                "#bcbd22", "#17becf")  # one per class, shared by the bar chart and the curves
GENERATED_BACKGROUND = np.array([20, 40, 90], dtype=np.float32)  # pixels the model filled in: blue paper...
GENERATED_INK = np.array([255, 170, 40], dtype=np.float32)  # ...with orange ink
HIDDEN = np.array([120, 30, 40], dtype=np.float32)  # pixels the model does not see
GAP = 255  # white lines between tiles


def digit_rgb(images: np.ndarray, known_mask: np.ndarray | None = None, hide_unknown: bool = False) -> np.ndarray:
    """uint8 images (..., H, W) -> RGB (..., H, W, 3): known pixels in gray; unknown pixels (known_mask
    False) hidden in dark red, or, when shown, tinted (blue background, orange ink) so that what the
    model generated stands apart from what it was given."""
    x = np.asarray(images, dtype=np.float32)[..., None] / 255.0
    gray = np.repeat(x * 255.0, 3, axis=-1)
    if known_mask is None:
        return gray.round().astype(np.uint8)
    unknown = ~np.asarray(known_mask, dtype=bool)
    tinted = HIDDEN * np.ones_like(gray) if hide_unknown else GENERATED_BACKGROUND + x * (GENERATED_INK - GENERATED_BACKGROUND)
    return np.where(unknown[..., None], tinted, gray).round().clip(0, 255).astype(np.uint8)


def digit_grid_figure(grid: np.ndarray, col_titles=None, row_titles=None, title: str | None = None,
                      scale: float = 4.0, gap: int = 2, max_cols: int | None = None) -> go.Figure:
    """Tiles (R, C, H, W) uint8 gray or (R, C, H, W, 3) RGB in one image, with optional titles above the
    columns and left of the rows; each image pixel is drawn `scale` screen pixels wide. With max_cols,
    columns past it wrap into further blocks of rows below (each with its column titles), so a narrow
    screen gets rows of full-size digits instead of thumbnails."""
    grid = np.asarray(grid)
    if grid.ndim == 4:
        grid = np.repeat(grid[..., None], 3, axis=-1)
    R, C, H, W, _ = grid.shape
    per = C if not max_cols or max_cols >= C else max_cols
    blocks = [grid[:, c: c + per] for c in range(0, C, per)]
    band = int(np.ceil((FONT + 8) / scale)) if col_titles is not None else gap  # room for the next block's titles
    block_h = R * (H + gap) - gap
    total_h = len(blocks) * block_h + (len(blocks) - 1) * band
    canvas = np.full((total_h, per * (W + gap) - gap, 3), GAP, dtype=np.uint8)
    annotations = []
    for b, block in enumerate(blocks):
        y0 = b * (block_h + band)
        for r in range(R):
            for c in range(block.shape[1]):
                canvas[y0 + r * (H + gap): y0 + r * (H + gap) + H, c * (W + gap): c * (W + gap) + W] = block[r, c]
        for c, text in enumerate((col_titles or [])[b * per: (b + 1) * per]):
            where = dict(y=1, yref="paper", yanchor="bottom") if b == 0 else dict(y=y0 - band / 2, yref="y", yanchor="middle")
            annotations.append(dict(x=c * (W + gap) + (W - 1) / 2, xref="x", text=text, showarrow=False, font=dict(size=FONT - 2),
                                    **where))
        for r, text in enumerate(row_titles or []):
            annotations.append(dict(x=0, xref="paper", xanchor="right", y=y0 + r * (H + gap) + (H - 1) / 2, yref="y",
                                    text=text, showarrow=False, font=dict(size=FONT - 2)))
    fig = go.Figure(go.Image(z=canvas, hoverinfo="skip"))
    top = (28 if col_titles is not None else 4) + (34 if title else 0)
    left = 70 if row_titles is not None else 4
    fig.update_layout(
        title=dict(text=title, font=dict(size=FONT)) if title else None, annotations=annotations,
        margin=dict(l=left, r=4, t=top, b=4),
        width=int(canvas.shape[1] * scale) + left + 4, height=int(canvas.shape[0] * scale) + top + 4,
    )
    fig.update_xaxes(visible=False, showgrid=False)
    fig.update_yaxes(visible=False, showgrid=False)
    return fig


def posterior_bar_figure(probs: np.ndarray, labels, title: str | None = "p(digit | drawing)") -> go.Figure:
    """Bars of a posterior (K,) over the classes; the most probable one is labelled with its value."""
    probs = np.asarray(probs, dtype=float)
    best = int(probs.argmax())
    fig = go.Figure(go.Bar(x=list(labels), y=probs, marker_color=list(DIGIT_COLORS[: len(probs)]),
                           text=[f"{p:.0%}" if i == best else "" for i, p in enumerate(probs)], textposition="outside",
                           hovertemplate="%{x}: %{y:.3f}<extra></extra>"))
    fig.update_layout(title=title, height=320, margin=dict(l=10, r=10, t=50 if title else 10, b=10), font=dict(size=FONT),
                      yaxis=dict(range=[0, 1.15], title="probability"), showlegend=False)
    return fig


def posterior_curve_figure(posteriors: np.ndarray, labels, total: int | None = None,
                           title: str | None = "p(digit | first pixels)") -> go.Figure:
    """Each class's posterior (T, K) against the number of pixels observed (1..T); the x axis runs to
    `total` (all pixels) so that a growing curve keeps its scale."""
    posteriors = np.asarray(posteriors, dtype=float)
    T, K = posteriors.shape
    x = np.arange(1, T + 1)
    fig = go.Figure()
    for k in range(K):
        fig.add_trace(go.Scatter(x=x, y=posteriors[:, k], name=labels[k], mode="lines",
                                 line=dict(color=DIGIT_COLORS[k % len(DIGIT_COLORS)], width=2)))
    fig.update_layout(title=title, height=320, margin=dict(l=10, r=10, t=50 if title else 10, b=10), font=dict(size=FONT),
                      xaxis=dict(title="pixels observed (raster order)", range=[1, total or max(T, 2)]),
                      yaxis=dict(title="probability", range=[-0.02, 1.02]), legend=dict(orientation="v"))
    return fig


def error_by_horizon_figure(errors: dict[str, np.ndarray], dt: float, many_curves: dict[str, np.ndarray] | None = None,
                            colors: dict[str, str] | None = None, num_curves: int = 0) -> go.Figure:
    """Mean absolute error against the forecast horizon, per model: a solid line for this curve's
    trajectories (errors (H,), step h at h + 1) and a dashed one for greedy forecasts of `num_curves` test
    curves (many_curves (H,)), so the gap between models shows on one curve and on many."""
    colors = colors or model_colors({**errors, **(many_curves or {})})
    fig = go.Figure()
    for name, err in errors.items():
        fig.add_trace(go.Scatter(x=np.arange(1, len(err) + 1), y=err, name=f"{name}: this curve", mode="lines",
                                 legendgroup=name, line=dict(color=colors.get(name, PALETTE[0]), width=2.5)))
    for name, err in (many_curves or {}).items():
        fig.add_trace(go.Scatter(x=np.arange(1, len(err) + 1), y=err, name=f"{name}: {num_curves} test curves (greedy)",
                                 mode="lines", legendgroup=name, line=dict(color=colors.get(name, PALETTE[0]), width=2, dash="dash")))
    fig.update_layout(height=360, margin=dict(l=10, r=10, t=20, b=10), font=dict(size=FONT),
                      xaxis=dict(title=f"steps ahead (1 step = {dt:g} s)", type="log"), yaxis=dict(title="mean |forecast - truth|"),
                      legend=dict(orientation="h", yanchor="top", y=-0.25, x=0))
    return fig


def likelihood_figure(reference: np.ndarray, value: float, theme: str | None = None,
                      title: str | None = "How digit-like is the drawing? log p(pixels)") -> go.Figure:
    """Where one image's log-likelihood (nats) falls among those of real test digits (reference (N,)):
    the real digits as a strip of dots, the image as a thick line, so a scribble shows as unlike any digit."""
    reference = np.asarray(reference, dtype=float)
    fig = go.Figure(go.Box(x=reference, name="real test digits", boxpoints="all", jitter=0.4, pointpos=0,
                           marker=dict(color=PALETTE[0], size=6), line=dict(color=PALETTE[0]), fillcolor="rgba(0,0,0,0)",
                           hovertemplate="%{x:.0f} nats<extra></extra>", orientation="h"))
    fig.add_vline(x=value, line=dict(color=PALETTE[1], width=4))
    fig.add_annotation(x=value, y=1, yref="paper", yanchor="bottom", text=f"your drawing: {value:.0f}", showarrow=False,
                       font=dict(size=FONT, color=PALETTE[1]))
    lo, hi = min(reference.min(), value), max(reference.max(), value)
    pad = 0.05 * (hi - lo or 1.0)
    fig.update_layout(title=title, height=230, margin=dict(l=10, r=10, t=70 if title else 30, b=10), font=dict(size=FONT),
                      xaxis=dict(title="log-likelihood (nats per image; higher = more digit-like)", range=[lo - pad, hi + pad]),
                      yaxis=dict(visible=False), showlegend=False)
    return fig
