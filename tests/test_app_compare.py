"""The Compare page under AppTest on tiny untrained stand-ins, one per family of tests/families.py TINY
(28x28, exported as train.py exports), so a family that lands is compared at once: every pair of families
samples, completes and reads a drawing side by side; the quality/speed scatter reads bench/compare.py's
results and shows a model missing from them as "not measured", never as a point at 0."""

import hashlib
import itertools
import json
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from app_models import ROOT
from engine.checkpoint import WEIGHTS_NAME, save_pretrained
from engine.recipes import get_recipe_class
from families import TINY
from test_app_mnist import drawing, figures, inject_drawing, title

ENTRYPOINT = str(ROOT / "app" / "streamlit_app.py")
COMPARE = "views/compare.py"


def stand_in_name(family: str) -> str:
    return f"{family.replace('_', '-')}-mnist-q2"


def write_family_models(root: Path, families=tuple(sorted(TINY))) -> Path:
    """root/<family>-mnist-q2/ for each family: its tiny model at 28x28 (Q=2, ten digits, random weights) with
    the MNIST recipe's data config; returns root."""
    for family in families:
        model = TINY[family](2, 10, 28, 28)
        data = get_recipe_class("mnist")({"data_dir": "unused"}, model.config).data_config()
        save_pretrained(model, Path(root) / stand_in_name(family), data=data)
    return Path(root)


def sha256(folder: Path) -> str:
    return hashlib.sha256((folder / WEIGHTS_NAME).read_bytes()).hexdigest()


def write_results(path: Path, root: Path, measured: dict[str, float]) -> Path:
    """A compare.json as bench/compare.py writes it, with entries for the models in `measured` (name -> bits/dim)."""
    models = {name: {"sha256": sha256(root / name), "family": "stand-in", "quantization_levels": 2, "parameters": 123,
                     "cpu": {"test": {"bits_per_dim": bits, "nll_nats_per_image": bits * 784 * 0.693, "images": 10000},
                             "bayes": {"accuracy": 0.9, "images": 1000},
                             "seconds": {"sample_10_digits_s": 0.5 + i, "class_posterior_by_prefix_1_image_s": 0.02,
                                         "complete_bottom_half_n4_p32_s": 1.0},
                             "measured_with": {"cpu": "Test CPU", "cores": 2, "threads": 1, "load_1min": 0.5, "date": "2026-11-30"}}}
              for i, (name, bits) in enumerate(measured.items())}
    path.write_text(json.dumps({"meta": {}, "models": models}))
    return path


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    root = write_family_models(tmp_path_factory.mktemp("pretrained"))
    names = sorted(p.name for p in root.iterdir())
    results = write_results(tmp_path_factory.mktemp("results") / "compare.json", root, {n: 0.1 + 0.01 * i for i, n in enumerate(names[1:])})
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AR_PRETRAINED_DIR", str(root))
        mp.setenv("AR_COMPARE_RESULTS", str(results))
        yield root


def open_compare(query: dict | None = None) -> AppTest:
    at = AppTest.from_file(ENTRYPOINT, default_timeout=240)
    for key, value in (query or {}).items():
        at.query_params[key] = value
    at.switch_page(COMPARE)
    return at


def ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def by_title(at) -> dict[str, list[dict]]:
    out = {}
    for fig in figures(at):
        out.setdefault(title(fig), []).append(fig)
    return out


def test_every_pair_of_families_side_by_side(pretrained):
    """One session, every pair in turn: both models sample all 784 pixels, complete the gallery digit, read
    the same drawing, and get a dependency map."""
    at = open_compare({"compare.samples": "1", "compare.complete.n": "1", "compare.complete.particles": "2"})
    at.run()
    ok(at)
    inject_drawing(at, "compare.canvas", drawing("one"))
    for a, b in itertools.combinations(sorted(TINY), 2):
        pair = [stand_in_name(a), stand_in_name(b)]
        at.multiselect(key="compare.models").set_value(pair).run()
        ok(at)
        figs = by_title(at)
        assert len(figs["784/784 px"]) == 2, pair  # both samples finished
        for name in pair:
            assert len(figs[name]) == 3, (name, sorted(figs))  # its completion, its posterior bars, its dependency map
        bars = [f for f in figs[pair[0]] if f["data"][0]["type"] == "bar"]
        assert len(bars) == 1 and len(bars[0]["data"][0]["x"]) == 10
        assert any("sampled at once in" in c.value or "sampled earlier" in c.value for c in at.caption)


def test_defaults_pick_different_families_and_settings_live_in_the_url(pretrained):
    at = open_compare({"compare.samples": "1", "compare.complete.n": "1", "compare.complete.particles": "2",
                       "compare.dep.row": "3", "compare.dep.col": "5"})
    at.run()
    ok(at)
    chosen = at.multiselect(key="compare.models").value
    assert len(chosen) == 4 and len(set(chosen)) == 4
    assert at.number_input(key="compare.dep.row").value == 3
    assert json.loads(at.query_params["compare.models"][0] if isinstance(at.query_params["compare.models"], list)
                      else at.query_params["compare.models"]) == chosen
    at.selectbox(key="compare.digit").set_value(3).run()
    ok(at)
    assert at.query_params["compare.digit"] in ("3", ["3"])


def test_one_model_is_not_a_comparison(pretrained):
    at = open_compare({"compare.models": json.dumps([stand_in_name("made")])})
    at.run()
    ok(at)
    assert any("Pick two to four models" in i.value for i in at.info)
    assert not at.get("plotly_chart")


def test_the_scatter_says_not_measured_for_a_model_missing_from_the_results(pretrained):
    at = open_compare({"compare.samples": "1", "compare.complete.n": "1", "compare.complete.particles": "2",
                       "compare.models": json.dumps([stand_in_name("made"), stand_in_name("pixelcnn")])})
    at.run()
    ok(at)
    names = sorted(p.name for p in pretrained.iterdir())
    missing = names[0]  # the fixture's results leave out the first model
    [scatter] = by_title(at)["Quality against speed"]
    points = [n for trace in scatter["data"] for n in trace["customdata"]]
    assert sorted(points) == names[1:]  # one point per measured model, none for the missing one
    assert all(x > 0 for trace in scatter["data"] for x in trace["x"])
    notes = [a["text"] for a in scatter["layout"]["annotations"]]
    assert notes == [f"not measured: {missing}"]
    table = at.dataframe[0].value
    row = table[table["model"] == missing].iloc[0]
    assert row["bits/dim"] == "not measured" and row["status"] == "not measured"
    assert table[table["model"] == names[1]].iloc[0]["bits/dim"] == "0.1000"
    assert any("Test CPU (2 cores)" in c.value for c in at.caption)


def test_changed_weights_are_not_shown_with_old_figures(tmp_path, monkeypatch):
    root = write_family_models(tmp_path / "pretrained", families=("made", "pixelcnn"))
    names = [stand_in_name("made"), stand_in_name("pixelcnn")]
    results = write_results(tmp_path / "compare.json", root, {n: 0.2 for n in names})
    torch.manual_seed(5)
    model = TINY["made"](2, 10, 28, 28)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    save_pretrained(model, root / names[0], data=json.loads((root / names[0] / "config.json").read_text())["data"])
    monkeypatch.setenv("AR_PRETRAINED_DIR", str(root))
    monkeypatch.setenv("AR_COMPARE_RESULTS", str(results))
    at = open_compare({"compare.samples": "1", "compare.complete.n": "1", "compare.complete.particles": "2"})
    at.run()
    ok(at)
    table = at.dataframe[0].value
    assert table[table["model"] == names[0]].iloc[0]["status"] == "not measured (its weights changed since)"
    assert table[table["model"] == names[1]].iloc[0]["status"] == "measured"


@pytest.mark.parametrize("name", list(__import__("app.presets", fromlist=["COMPARE"]).COMPARE))
def test_every_preset_opens(pretrained, name):
    """Each preset button sets its values at once (a name missing here falls back to the defaults)."""
    from app import presets

    at = open_compare({"compare.samples": "1", "compare.complete.n": "1", "compare.complete.particles": "2",
                       "compare.models": json.dumps([stand_in_name("made"), stand_in_name("wavenet")])})
    at.run()
    at.button(key=f"compare.preset.{name}").click().run()
    ok(at)
    values = presets.COMPARE[name]
    here = {p.name for p in pretrained.iterdir()}
    chosen = at.multiselect(key="compare.models").value
    if set(values["compare.models"]) <= here:
        assert chosen == values["compare.models"]
    else:  # a model the preset names is not here: the page keeps to its defaults instead of failing
        assert len(chosen) == 4
    for key in ("compare.dep.row", "compare.dep.col"):
        if key in values:
            assert at.number_input(key=key).value == values[key]


def test_a_stopped_race_says_where_and_the_other_sections_still_run(pretrained):
    at = open_compare({"compare.samples": "1", "compare.complete.n": "1", "compare.complete.particles": "2",
                       "compare.models": json.dumps([stand_in_name("made"), stand_in_name("wavenet")])})
    at.session_state["compare.stopped"] = "Sampling: 10% of every model's pixels"  # what the Stop button's callback leaves
    at.run()
    ok(at)
    assert any("Stopped the race at: Sampling: 10% of every model's pixels" in i.value for i in at.info)
    figs = by_title(at)
    assert "784/784 px" not in figs  # no race ran
    assert len(figs[stand_in_name("made")]) == 2  # its completion and its dependency map (no drawing yet)
    at.button(key="compare.again").click().run()  # Run again: the race runs
    ok(at)
    assert len(by_title(at)["784/784 px"]) == 2
