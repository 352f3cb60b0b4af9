"""AppTest smoke tests of the Fourier forecast page, on untrained stand-in models (fast, hermetic)
and, when pretrained/ holds them, on the shipped models."""

import base64
import json
import subprocess
import sys

import numpy as np
import torch
import pytest
from streamlit.testing.v1 import AppTest

from app_models import ROOT, shipped, write_models
from engine.data.fourier import MAX_CURVE_LENGTH
from engine.tasks import MAX_FORECAST_STEPS, MAX_TRAJECTORIES

ENTRYPOINT = str(ROOT / "app" / "streamlit_app.py")


@pytest.fixture
def pretrained(tmp_path, monkeypatch):
    root = write_models(tmp_path / "pretrained")
    monkeypatch.setenv("AR_PRETRAINED_DIR", str(root))
    return root


def run_app() -> AppTest:
    return AppTest.from_file(ENTRYPOINT, default_timeout=180).run()


def figure(at, i=0) -> dict:
    return json.loads(at.get("plotly_chart")[i].proto.spec)


def array(value) -> np.ndarray:
    """A trace's x or y: plotly writes numpy arrays as base64 typed arrays, lists stay lists."""
    if isinstance(value, dict):
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
    return np.array([np.nan if v is None else v for v in value], dtype=float)


def trace_names(at, i=0) -> list[str]:
    return [trace.get("name") for trace in figure(at, i)["data"]]


def test_page_draws_both_models(pretrained):
    at = run_app()
    assert not at.exception
    assert not at.error
    assert len(at.get("plotly_chart")) == 2  # the forecast and the error against horizon
    names = trace_names(at)
    for model in ("wavenet-fourier", "wavenet-fourier-unrolled"):
        assert f"{model}: mean" in names and f"{model}: mean ± 2σ" in names and f"{model}: 20 samples" in names
    assert {"true curve", "observed"} <= set(names)
    errors = {tr["name"]: tr for tr in figure(at, 1)["data"]}
    for model in ("wavenet-fourier", "wavenet-fourier-unrolled"):
        assert len(array(errors[f"{model}: this curve"]["y"])) == 400  # one mean error per forecast step
        assert len(array(errors[f"{model}: 16 test curves (greedy)"]["y"])) == 400  # and over many curves


def test_error_over_many_curves_can_be_switched_off(pretrained):
    at = run_app()
    at.toggle(key="fourier.many").set_value(False).run()
    assert not at.exception and not at.error
    names = [tr["name"] for tr in figure(at, 1)["data"]]
    assert names and all(name.endswith("this curve") for name in names)


def test_more_observed_samples_than_the_curve_shows_an_error(pretrained):
    at = run_app()
    at.number_input(key="curve.length").set_value(500)
    at.number_input(key="observe.n").set_value(501).run()
    assert not at.exception
    assert len(at.error) == 1 and "cannot observe 501" in at.error[0].value


def test_horizon_and_trajectories_stop_at_the_engine_caps(pretrained):
    at = run_app()
    horizon, trajectories = at.number_input(key="sampler.horizon"), at.number_input(key="sampler.trajectories")
    assert horizon.max == MAX_FORECAST_STEPS and trajectories.max == MAX_TRAJECTORIES
    assert at.number_input(key="curve.length").max == MAX_CURVE_LENGTH


def test_prior_mode_side_by_side(pretrained):
    at = run_app()
    at.radio(key="observe.mode").set_value("Sample from the prior")
    at.radio(key="layout").set_value("Side by side")
    at.number_input(key="sampler.horizon").set_value(50).run()
    assert not at.exception and not at.error
    charts = at.get("plotly_chart")
    assert len(charts) == 3  # two forecasts side by side, then the error chart (no curve: no line in it)
    assert all(not tr["name"].endswith("this curve") for tr in figure(at, 2)["data"])
    for i in range(2):
        names = trace_names(at, i)
        assert "true curve" not in names and "observed" not in names  # nothing observed from the prior
        mean = next(tr for tr in figure(at, i)["data"] if tr["name"].endswith(": mean"))
        assert len(array(mean["x"])) == 50


def test_greedy_with_one_model_and_unavailable_models_reported(pretrained):
    (pretrained / "broken").mkdir()
    (pretrained / "broken" / "config.json").write_text("{not json")
    from safetensors.torch import save_file

    # Weights that are a valid safetensors file of the wrong tensors: listed, but loading fails.
    save_file({"x": torch.zeros(1)}, str(pretrained / "wavenet-fourier-unrolled" / "model.safetensors"))
    (pretrained / "truncated").mkdir()
    (pretrained / "truncated" / "config.json").write_text((pretrained / "wavenet-fourier" / "config.json").read_text())
    (pretrained / "truncated" / "model.safetensors").write_bytes(b"truncated")
    at = run_app()
    assert not at.exception
    assert any("broken" in c.value and "unavailable" in c.value for c in at.caption)
    assert any("truncated" in c.value and "corrupt" in c.value for c in at.caption)
    # A model that is listed but cannot load: the other one still plots, the failure is an error.
    assert len(at.error) == 1 and "wavenet-fourier-unrolled" in at.error[0].value
    assert "wavenet-fourier: mean" in trace_names(at)
    at.multiselect(key="models").set_value(["wavenet-fourier"])
    at.slider(key="sampler.temperature").set_value(0.0)
    at.number_input(key="sampler.horizon").set_value(30).run()
    assert not at.exception and not at.error
    spread = next(tr for tr in figure(at)["data"] if tr["name"] == "wavenet-fourier: 20 samples")
    rows = array(spread["y"]).reshape(20, 31)[:, :30]  # each trajectory ends with a NaN gap
    assert np.all(rows == rows[0])  # greedy: every trajectory is the same


def test_no_models_is_a_message_not_a_crash(tmp_path, monkeypatch):
    monkeypatch.setenv("AR_PRETRAINED_DIR", str(tmp_path / "empty"))
    at = run_app()
    assert not at.exception and not at.error
    assert len(at.info) == 1 and "No Fourier model" in at.info[0].value


@pytest.mark.skipif(not shipped(), reason="pretrained/wavenet-fourier and -unrolled are not exported yet")
def test_shipped_models(monkeypatch):
    monkeypatch.setenv("AR_PRETRAINED_DIR", str(ROOT / "pretrained"))
    at = run_app()
    assert not at.exception and not at.error
    names = trace_names(at)
    assert "wavenet-fourier: mean" in names and "wavenet-fourier-unrolled: mean" in names


def test_engine_does_not_import_streamlit():
    code = "import sys, engine, engine.tasks, engine.checkpoint, engine.data.fourier; assert 'streamlit' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


@pytest.mark.parametrize("pick", ["min", "max", "alternate"])
def test_every_control_at_its_extremes_answers_with_a_chart_or_a_message(pretrained, pick):
    """All sliders and number inputs at once at their minimum, their maximum, or alternating: the page
    never raises; it draws a chart or says what is wrong (e.g. more observed samples than the curve)."""
    at = run_app()
    widgets = [w for w in list(at.slider) + list(at.number_input) if getattr(w, "min", None) is not None and getattr(w, "max", None) is not None]
    assert len(widgets) >= 8  # curve parameters, observation and sampler settings
    for i, w in enumerate(widgets):
        lo, hi = w.min, w.max
        if isinstance(w.value, (tuple, list)):  # range slider
            w.set_value((lo, lo) if pick == "min" else (hi, hi) if pick == "max" else (lo, hi))
        else:
            w.set_value(lo if pick == "min" or (pick == "alternate" and i % 2) else hi)
    unbounded = {"observe.n": 10**6, "curve.dt": 1e3, "sampler.seed": 2**62}
    if pick == "max":  # inputs with no maximum: far beyond anything sensible
        for key, value in unbounded.items():
            at.number_input(key=key).set_value(value)
    at.run()
    assert not at.exception
    assert len(at.get("plotly_chart")) == 2 or at.error or at.warning
    for message in list(at.error) + list(at.warning):
        assert len(message.value) > 20  # a sentence, not a bare exception name
    if pick == "max":  # the curve is as long as allowed; a million observed samples is more than it has
        assert len(at.error) == 1 and f"cannot observe {10**6}" in at.error[0].value


def test_the_largest_allowed_request_still_draws(pretrained):
    """At the engine's caps (horizon and trajectories) the page still answers with a chart."""
    at = run_app()
    at.number_input(key="sampler.horizon").set_value(MAX_FORECAST_STEPS)
    at.number_input(key="sampler.trajectories").set_value(MAX_TRAJECTORIES)
    at.number_input(key="curve.length").set_value(MAX_CURVE_LENGTH)
    at.run()
    assert not at.exception and not at.error and len(at.get("plotly_chart")) == 2
