"""Prepared views under AppTest, on tiny untrained stand-in models: settings come from the URL and go back
to it, survive leaving a page and coming back, Reset restores the defaults, every preset of every page
opens without an exception (also through a `?preset=` link), and no widget can ask for more than the
engine's caps."""

import pytest
from streamlit.testing.v1 import AppTest

from app import presets as app_presets
from app import state
from app_models import ROOT, write_mnist_models, write_models
from engine.image_tasks import MAX_IMAGES, MAX_PARTICLE_ROWS
from engine.tasks import MAX_FORECAST_STEPS, MAX_TRAJECTORIES

ENTRYPOINT = str(ROOT / "app" / "streamlit_app.py")
FOURIER, SAMPLE, COMPLETE, GUESS = ("views/fourier_forecast.py", "views/mnist_sample.py", "views/mnist_complete.py",
                                    "views/mnist_guess.py")
PAGES = {"fourier": FOURIER, "sample": SAMPLE, "complete": COMPLETE, "guess": GUESS}


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    root = tmp_path_factory.mktemp("pretrained")
    write_models(root)
    write_mnist_models(root, names=["wavenet-mnist-q2", "wavenet-mnist-q256", "wavenet-mnist-q2-hybrid"])
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AR_PRETRAINED_DIR", str(root))
        yield root


def presets(page: str) -> dict:
    return app_presets.PAGES[page][0]


def opened(page: str, query: dict | None = None) -> AppTest:
    at = AppTest.from_file(ENTRYPOINT, default_timeout=240)
    for key, value in (query or {}).items():
        at.query_params[key] = value
    at.switch_page(page)
    return at.run()


def ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def test_url_settings_open_the_page_in_that_state_and_changes_go_back_to_the_url(pretrained):
    at = opened(FOURIER, {"sampler.horizon": "120", "sampler.temperature": "0.0", "layout": "Side by side",
                          "models": '["wavenet-fourier"]', "curve.terms": "2"})
    ok(at)
    assert at.number_input(key="sampler.horizon").value == 120
    assert at.slider(key="sampler.temperature").value == 0.0
    assert at.radio(key="layout").value == "Side by side"
    assert at.multiselect(key="models").value == ["wavenet-fourier"]
    assert at.number_input(key="curve.terms").value == 2
    at.number_input(key="sampler.seed").set_value(7).run()
    ok(at)
    assert at.query_params["sampler.seed"] == "7" and at.query_params["sampler.horizon"] == "120"


def test_a_stale_or_hand_edited_url_falls_back_or_is_clamped(pretrained):
    at = opened(COMPLETE, {"complete.n": "10", "complete.particles": "5000", "complete.digit": "42",
                           "complete.mask.mode": "Nonsense", "complete.gallery.example": "abc"})
    ok(at)
    assert at.number_input(key="complete.particles").value == MAX_PARTICLE_ROWS // 10  # clamped to the cap
    assert at.selectbox(key="complete.digit").value is None  # not an option: the default
    assert at.radio(key="complete.mask.mode").value == "Rows below a line"
    assert at.slider(key="complete.gallery.example").value == 1


def test_settings_survive_leaving_and_returning(pretrained):
    at = opened(COMPLETE)
    at.number_input(key="complete.n").set_value(2)
    at.number_input(key="complete.particles").set_value(8)
    at.selectbox(key="complete.gallery.digit").set_value(5).run()
    ok(at)
    at.switch_page(SAMPLE).run()
    ok(at)
    at.switch_page(COMPLETE).run()
    ok(at)
    assert at.number_input(key="complete.n").value == 2
    assert at.number_input(key="complete.particles").value == 8
    assert at.selectbox(key="complete.gallery.digit").value == 5


def test_reset_restores_the_defaults(pretrained):
    at = opened(SAMPLE)
    at.slider(key="sample.temperature").set_value(0.5)
    at.number_input(key="sample.per_digit").set_value(1).run()
    ok(at)
    at.button(key="sample.reset").click().run()
    ok(at)
    assert at.slider(key="sample.temperature").value == 1.0 and at.number_input(key="sample.per_digit").value == 2
    assert at.query_params["sample.temperature"] == "1.0"


@pytest.mark.parametrize("page", list(PAGES))
def test_every_preset_opens_without_an_exception(pretrained, page):
    found = presets(page)
    assert len(found) >= 3 and set(found) == set(app_presets.PAGES[page][1])  # each preset says what it shows
    at = opened(PAGES[page])
    ok(at)
    for name, values in found.items():
        at.button(key=f"{page}.preset.{name}").click().run()
        assert not at.exception, (name, [e.value for e in at.exception])
        assert not at.error, (name, [e.value for e in at.error])
        for key, value in values.items():  # the preset's settings are the widgets' values now
            got = at.session_state[key]
            assert got == (tuple(value) if isinstance(value, list) and isinstance(got, tuple) else value), (name, key)


@pytest.mark.parametrize("page", list(PAGES))
def test_a_preset_link_opens_the_preset(pretrained, page):
    name, values = next(iter(presets(page).items()))
    at = opened(PAGES[page], {state.PRESET_PARAM: name})
    ok(at)
    for key, value in values.items():
        got = at.session_state[key]
        assert got == (tuple(value) if isinstance(value, list) and isinstance(got, tuple) else value)
    assert state.PRESET_PARAM not in at.query_params  # applied once, then the settings themselves are the link


def test_fourier_widgets_stop_at_the_engine_caps(pretrained):
    at = opened(FOURIER)
    ok(at)
    assert at.number_input(key="sampler.horizon").max == MAX_FORECAST_STEPS
    assert at.number_input(key="sampler.trajectories").max == MAX_TRAJECTORIES


@pytest.mark.parametrize("n", [1, 3, 10])
def test_completions_times_particles_never_exceed_the_row_cap(pretrained, n):
    at = opened(COMPLETE)
    at.number_input(key="complete.n").set_value(1).run()
    at.number_input(key="complete.particles").set_value(512).run()
    at.number_input(key="complete.n").set_value(n).run()
    ok(at)  # more completions: the page lowers the particles to fit instead of failing after the click
    particles = at.number_input(key="complete.particles")
    assert particles.max * n <= MAX_PARTICLE_ROWS and particles.value <= particles.max
    assert particles.value == min(512, MAX_PARTICLE_ROWS // n)


def test_samples_per_digit_times_digits_never_exceed_the_image_cap(pretrained):
    at = opened(SAMPLE)
    per_digit = at.number_input(key="sample.per_digit")
    assert per_digit.max * 10 <= MAX_IMAGES
    at.multiselect(key="sample.digits").set_value([7]).run()
    ok(at)
    assert at.number_input(key="sample.per_digit").max * 1 <= MAX_IMAGES


def test_readme_preset_links_name_real_presets():
    import re
    import urllib.parse

    links = re.findall(r"\]\((http://localhost:8501/([a-z_]*)\?preset=([^)]+))\)", (ROOT / "README.md").read_text())
    assert len(links) >= 4
    for _, path, name in links:
        page = next(p for p, url_path in app_presets.URL_PATHS.items() if url_path == path)
        assert urllib.parse.unquote(name) in presets(page), (path, name)


def test_an_emptied_fourier_model_choice_keeps_the_controls(pretrained):
    at = opened(FOURIER)
    at.multiselect(key="models").set_value([]).run()
    ok(at)
    assert any("Pick at least one model" in i.value for i in at.info)
    assert at.number_input(key="sampler.horizon").value == 400 and not at.get("plotly_chart")


def test_a_drawing_on_complete_is_hidden_where_it_was_drawn(pretrained):
    """The top half of a digit drawn above the line (rows 14+ hidden) is given to the model unmoved and
    unscaled: the page's 'input' is the drawing as drawn, its lower rows hidden."""
    import base64
    import io
    import json

    import numpy as np
    from PIL import Image, ImageDraw

    from app import canvas, plots

    at = opened(COMPLETE, {"complete.source": "Your drawing", "complete.mask.row": "14", "complete.n": "1",
                           "complete.particles": "4"})
    ok(at)
    img = Image.new("RGBA", (280, 280), (0, 0, 0, 0))
    ImageDraw.Draw(img).line([(90, 60), (140, 30), (190, 60), (180, 120)], fill=(255, 255, 255, 255), width=16)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    at.session_state["complete.canvas"] = {"drawing": {"raw": {"objects": []},
                                                       "data": "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()},
                                           "backgroundFit": None}
    at.run()
    ok(at)
    given = next(json.loads(c.proto.spec) for c in at.get("plotly_chart") if "given" in json.dumps(json.loads(c.proto.spec)["layout"].get("title")))
    z = given["data"][0]["z"]
    z = np.frombuffer(base64.b64decode(z["bdata"]), dtype=z["dtype"]).reshape([int(n) for n in z["shape"].split(",")]) \
        if isinstance(z, dict) else np.asarray(z, dtype=np.uint8)
    expected = canvas.canvas_to_digit(np.asarray(img), fit=False)
    np.testing.assert_array_equal(z[:28, :28, 0], expected)  # the drawing as drawn: not moved, not enlarged
    hidden = z[:28, 30:58]
    assert (hidden[14:] == plots.HIDDEN.astype(np.uint8)).all() and (hidden[:14, :, 0] == expected[:14]).all()
