"""Figure builders: numpy in, plotly figure out. No widgets, no engine calls."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")


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
) -> go.Figure:
    """The true curve t, truth (T,) (dashed), its observed first n_observed samples (solid), and per
    model its trajectories (N, H) as thin translucent lines plus the mean and a mean +/- 2 std band
    from `summary`. Forecast step h sits at sample index start + h. The x axis ends with the forecast."""
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
                                 line=dict(color="rgba(40,40,40,0.9)", width=1.5, dash="dash")))
        if n_observed:
            fig.add_trace(go.Scatter(x=t[:n_observed], y=truth[:n_observed], name="observed", mode="lines", legendrank=2,
                                     line=dict(color="black", width=2.5)))
    if n_observed and t is not None:
        fig.add_vline(x=n_observed * dt, line=dict(color="gray", width=1, dash="dot"))
    fig.update_layout(
        title=title, template="plotly_white", height=520, margin=dict(l=10, r=10, t=60 if title else 30, b=10),
        xaxis_title="t (s)", yaxis_title="y", legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0),
    )
    if y_range is not None:
        fig.update_yaxes(range=list(y_range))
    if forecasts:  # the curve may run far past the forecast: frame what was sampled
        end = max(start + trajectories.shape[1] for trajectories, _ in forecasts.values())
        fig.update_xaxes(range=[0, end * dt])
    return fig
