"""Forecast a Fourier series with the one-step and the n-step (unrolled) WaveNet, overlaid."""

import numpy as np
import streamlit as st
import torch

from app import components, plots, presets, resources, state
from engine.data.fourier import period_to_condition
from engine.tasks import forecast, forecast_error_over_curves, summarize_trajectories

DEFAULT_OBSERVED, DEFAULT_HORIZON = 300, 400
ERROR_CURVES = 16  # test curves in the error chart's dashed lines

PRESETS, PRESET_NOTES = presets.FOURIER, presets.FOURIER_NOTES
state.view("fourier", PRESETS)
st.title("Fourier forecast")
st.caption("Each model sees the first samples of a curve and its period, then samples many continuations "
           "one step at a time. Thin lines are single trajectories; the band is mean ± 2σ.")

listing = resources.available_models("fourier")
with st.sidebar:
    state.controls("fourier", PRESETS, PRESET_NOTES)
    names = components.model_picker(sorted(listing.usable), listing.unavailable)
if not listing.usable:
    st.info(f"No Fourier model is available in `{resources.pretrained_root()}`. "
            "Train one with `python train.py --config configs/wavenet-fourier.json`.")
    st.stop()

data = listing.usable[(names or sorted(listing.usable))[0]]["data"]
with st.sidebar:
    layout = state.kept(st.radio, "Layout", options=["Overlaid", "Side by side"], horizontal=True, key="layout")
    many_curves = state.kept(st.toggle, f"Error over {ERROR_CURVES} test curves too", value=True, key="fourier.many",
                             help="Also forecast the first test curves (greedy, as observed and forecast here) and plot "
                                  "the mean error: roughly doubles the page's work.")
    with st.expander("Forecast", expanded=True):
        n_observed = components.observation_controls(default=DEFAULT_OBSERVED)
        sampler = components.sampler_controls(horizon=DEFAULT_HORIZON, trajectories=20)
    with st.expander("Curve", expanded=False):
        curve = components.fourier_curve_controls(data, min_length=DEFAULT_OBSERVED + DEFAULT_HORIZON)

components.what_to_look_for(
    "- **Observed vs forecast**: the solid line is what the models saw; past the dotted line they are on their own.\n"
    "- **One-step vs n-step**: the one-step model (`wavenet-fourier`) was trained only to predict the next sample; "
    "the unrolled one also on its own samples further ahead. The error chart below shows where that pays off: "
    "at long horizons, and most with few observed samples (preset *n-step wins*).\n"
    "- **Temperature 0 is greedy**: always the most likely value; every trajectory is then the same, and greedy "
    "paths tend to flatten or repeat. At 1 the spread of the trajectories is the model's uncertainty.\n"
    "- A stray trajectory far from the others is one sample that took an unlikely turn; the mean and band "
    "summarize all of them.")
if not names:
    st.info("Pick at least one model in the sidebar.")
    st.stop()

warnings = []
train = data.get("train_params", {})
lo_terms, hi_terms = train.get("terms", [len(curve.coeffs)] * 2)
if not lo_terms <= len(curve.coeffs) <= hi_terms:
    warnings.append(f"{len(curve.coeffs)} terms (trained on {lo_terms}..{hi_terms})")
noise = float(train.get("noise", 0.0))
for what, value, (lo, hi) in (("bias", curve.bias, train.get("bias_range", [0.0, 0.0])),
                              ("trend", curve.trend, train.get("trend_range", [0.0, 0.0])),
                              ("noise", curve.noise, [0.0, noise]),
                              ("largest coefficient", max(curve.coeffs, key=abs), train.get("coeff_range", [-1.0, 1.0])),
                              ("dt", curve.dt, [train.get("dt", curve.dt)] * 2)):
    if not lo - 1e-9 <= value <= hi + 1e-9:
        warnings.append(f"{what} {value:g} (trained on {lo:g}..{hi:g})")

try:
    t, truth = curve.values()
    observed = curve.observed(n_observed)
except ValueError as e:
    st.error(str(e))
    st.stop()
quant = data.get("quantization", {})
if quant and (truth.min() < quant["low"] or truth.max() > quant["high"]):
    warnings.append(f"values {truth.min():.2f}..{truth.max():.2f} beyond the quantization range {quant['low']:g}..{quant['high']:g}")
if warnings:
    st.warning("This curve leaves what the models were trained on: " + "; ".join(warnings) + ". Expect poor forecasts.")

if components.stopped_notice("fourier", "forecasting"):
    st.stop()
run = components.RunProgress("fourier", "Sampling...")
results, errors = {}, {}
for i, name in enumerate(names):
    def report(done, total, i=i, name=name):
        run.update((i + done / total) / len(names), f"Sampling {name}: step {done} of {total}")

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
for message, failed in errors.items():
    st.error(message if len(failed) == len(names) else f"{', '.join(failed)}: {message}")

theme = st.context.theme.type
y_range = (quant["low"] - 0.1, quant["high"] + 0.1) if quant else None
shown = (t, truth) if n_observed else (None, None)  # from the prior there is no curve to compare with
colors = plots.model_colors(names)
figure_args = dict(n_observed=n_observed, start=max(n_observed, 1), dt=curve.dt, colors=colors, y_range=y_range, theme=theme)
if layout == "Overlaid" or len(results) < 2:
    st.plotly_chart(plots.forecast_figure(*shown, forecasts=results, **figure_args))
else:
    for column, (name, result) in zip(st.columns(len(results)), results.items()):
        column.plotly_chart(plots.forecast_figure(*shown, forecasts={name: result}, title=name, **figure_args))

if results:
    st.subheader("Error against horizon")
    future = truth[n_observed:] if n_observed else None
    by_step, many = {}, {}
    for name, (trajectories, _) in results.items():
        if future is not None and len(future):
            steps = min(trajectories.shape[1], len(future))
            by_step[name] = np.abs(trajectories[:, :steps] - future[None, :steps]).mean(axis=0)
    if many_curves:
        for i, name in enumerate(results):
            def report(done, total, i=i, name=name):
                run.update((i + done / total) / len(results), f"{name}: {ERROR_CURVES} test curves, step {done} of {total}")

            try:
                many[name] = forecast_error_over_curves(resources.load_model(name), n_observed, sampler.horizon, ERROR_CURVES,
                                                        progress=report)
            except ValueError as e:
                st.warning(f"{name}: no error over many curves ({e})")
    st.plotly_chart(plots.error_by_horizon_figure(by_step, curve.dt, many, colors, num_curves=ERROR_CURVES), key="fourier.errors")
    st.caption(f"Solid: this curve, the mean over its trajectories of |forecast - truth| at each step ahead (none from the "
               f"prior). Dashed: greedy forecasts of the first {ERROR_CURVES} test curves of the models' training "
               "distribution, observed and forecast as set here: the n-step gain on many curves, not just this one.")

run.done()
with st.expander("Model cards: test-split metrics"):
    st.table(components.metrics_table({name: listing.usable[name] for name in names}))
