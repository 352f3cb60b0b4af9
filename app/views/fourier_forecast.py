"""Forecast a Fourier series with the one-step and the n-step (unrolled) WaveNet, overlaid."""

import streamlit as st
import torch

from app import components, plots, resources
from engine.data.fourier import period_to_condition
from engine.tasks import forecast, summarize_trajectories

DEFAULT_OBSERVED, DEFAULT_HORIZON = 300, 400

st.title("Fourier forecast")
st.caption("Each model sees the first samples of a curve and its period, then samples many continuations "
           "one step at a time. Thin lines are single trajectories; the band is mean ± 2σ.")

listing = resources.available_models("fourier")
with st.sidebar:
    names = components.model_picker(sorted(listing.usable), listing.unavailable)
if not names:
    st.info(f"No Fourier model is selected or available in `{resources.pretrained_root()}`. "
            "Train one with `python train.py --config configs/wavenet-fourier.json`.")
    st.stop()

data = listing.usable[names[0]]["data"]
with st.sidebar:
    layout = st.radio("Layout", ["Overlaid", "Side by side"], horizontal=True, key="layout")
    with st.expander("Forecast", expanded=True):
        n_observed = components.observation_controls(default=DEFAULT_OBSERVED)
        sampler = components.sampler_controls(horizon=DEFAULT_HORIZON, trajectories=20)
    with st.expander("Curve", expanded=False):
        curve = components.fourier_curve_controls(data, min_length=DEFAULT_OBSERVED + DEFAULT_HORIZON)

try:
    t, truth = curve.values()
    observed = curve.observed(n_observed)
except ValueError as e:
    st.error(str(e))
    st.stop()

bar = st.progress(0.0, text="Sampling...")
results, errors = {}, {}
for i, name in enumerate(names):
    def report(done, total, i=i, name=name):
        bar.progress((i + done / total) / len(names), text=f"Sampling {name}: step {done} of {total}")

    try:
        model = resources.load_model(name)
        periods = model.data_config.get("periods") or []
        condition = period_to_condition(curve.period, periods) if periods else None
        trajectories = forecast(model, observed, sampler.horizon, sampler.num_trajectories, condition,
                                sampler.temperature, generator=torch.Generator().manual_seed(sampler.seed),
                                progress=report)
        results[name] = (trajectories, summarize_trajectories(trajectories))
    except ValueError as e:
        errors.setdefault(str(e), []).append(name)
bar.empty()
for message, failed in errors.items():
    st.error(message if len(failed) == len(names) else f"{', '.join(failed)}: {message}")

quant = data.get("quantization", {})
y_range = (quant["low"] - 0.1, quant["high"] + 0.1) if quant else None
shown = (t, truth) if n_observed else (None, None)  # from the prior there is no curve to compare with
colors = plots.model_colors(names)
figure_args = dict(n_observed=n_observed, start=max(n_observed, 1), dt=curve.dt, colors=colors, y_range=y_range)
if layout == "Overlaid" or len(results) < 2:
    st.plotly_chart(plots.forecast_figure(*shown, forecasts=results, **figure_args))
else:
    for column, (name, result) in zip(st.columns(len(results)), results.items()):
        column.plotly_chart(plots.forecast_figure(*shown, forecasts={name: result}, title=name, **figure_args))

with st.expander("Model cards: test-split metrics"):
    st.table({name: listing.usable[name].get("metrics", {}) for name in names})
