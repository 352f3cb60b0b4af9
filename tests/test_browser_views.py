"""The app as a presenter uses it, in a real browser: at 1024x768 with the sidebar open the Guess and
Complete canvases are fully visible; the top half of a real test digit drawn on Complete (rows 14+ hidden)
comes back unchanged at the top of every completion; ten real test digits drawn stroke by stroke on
Guess are read by the default Q=256 model; a URL with settings opens the page in that state; and
screenshots of every page in the light and the dark theme at 1280x720 (docs/, with AR_UPDATE_DOCS=1)."""

import re
import time
import urllib.parse

import numpy as np
import pytest

from app_models import MNIST_MODELS, ROOT, shipped, write_mnist_models, write_models
from bench.strokes import decode, digit_strokes
from browser import chromium_page, streamlit_server, update_docs, wait_until_idle
from engine.data.mnist import load_gallery

TIMEOUT_MS = 180_000
Q256 = "wavenet-mnist-q256"

# Every plotly figure on the page: its title, first annotation, and first trace's decoded y and z.
FIGURES_JS = """() => Array.from(document.querySelectorAll('[data-testid="stPlotlyChart"] .js-plotly-plot')).map(gd => {
  const t = gd.layout && gd.layout.title;
  const tr = (gd._fullData || [])[0] || {};
  const z = tr.z ? Array.from(tr.z, row => Array.from(row, px => Array.from(px).slice(0, 3))) : null;
  return {title: (t && (t.text || t)) || '', first: ((gd.layout.annotations || [])[0] || {}).text || '',
          y: tr.y ? Array.from(tr.y) : null, z: z};
})"""


def url_of(base: str, path: str, **settings) -> str:
    return f"{base}/{path}?" + urllib.parse.urlencode(settings, quote_via=urllib.parse.quote)


def no_errors(page) -> None:
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.locator('[data-testid="stAlertContentError"]').count() == 0


def figure(page, title: str) -> dict | None:
    """The figure titled `title` (Streamlit's theme wraps titles in <b>) or whose first annotation it is."""
    return next((f for f in page.evaluate(FIGURES_JS) if re.sub(r"</?b>", "", f["title"]) == title or f["first"] == title), None)


def canvas_fully_visible(page, index: int = 0) -> bool:
    """The canvas's drawing layer lies inside the viewport, full size, and nothing but the canvas's own
    floating toolbar covers its corners (no column cuts it off)."""
    wait_until_idle(page)
    canvas = page.locator('[data-testid="stMain"] canvas.upper-canvas').nth(index)
    canvas.wait_for(timeout=TIMEOUT_MS)
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    width = page.viewport_size["width"]
    if box["x"] < 0 or box["x"] + box["width"] > width or box["width"] < 279:
        return False
    return canvas.evaluate("""c => { const r = c.getBoundingClientRect(), root = c.getRootNode();
        return [[r.left + 3, r.top + 3], [r.right - 3, r.top + 3], [r.left + 3, r.bottom - 3], [r.right - 3, r.bottom - 3]]
            .every(([x, y]) => { const e = root.elementFromPoint(x, y); return !!e && (e.classList.contains('upper-canvas') || !!e.closest('.dc-toolbar-card')); }); }""")


def draw_strokes(page, strokes, index: int = 0) -> None:
    """Mouse strokes (canvas pixels) on a canvas's drawing layer, one mouse-down ... mouse-up each."""
    canvas = page.locator('[data-testid="stMain"] canvas.upper-canvas').nth(index)
    canvas.wait_for(timeout=TIMEOUT_MS)
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    for points in strokes:
        page.mouse.move(box["x"] + points[0][0], box["y"] + points[0][1])
        page.mouse.down()
        for x, y in points[1:]:
            page.mouse.move(box["x"] + x, box["y"] + y, steps=2)
        page.mouse.up()


def settled(page, title: str, pause: float = 2.0) -> dict:
    """The figure `title` once the page stopped changing: the canvas sends a drawing about 1.3 s after
    mouse-up, and each stroke reruns the page."""
    previous = None
    for _ in range(10):
        time.sleep(pause)
        wait_until_idle(page)
        current = figure(page, title)
        if current is not None and current == previous:
            return current
        previous = current
    raise AssertionError(f"{title!r} kept changing")


@pytest.mark.skipif(not shipped([*MNIST_MODELS, Q256]), reason="needs the trained MNIST models in pretrained/")
def test_drawing_flows_at_1024x768():
    images, labels = load_gallery()
    images, labels = images.numpy(), labels.numpy()
    env = {"AR_PRETRAINED_DIR": str(ROOT / "pretrained")}
    with chromium_page(1024, 768) as page, streamlit_server(env) as url:
        # Complete: the top half of a real 2 drawn above the red region comes back unchanged in every completion
        two = int(np.flatnonzero(labels == 2)[0])
        page.goto(url_of(url, "mnist_complete", **{"complete.source": "Your drawing", "complete.mask.row": 14,
                                                 "complete.n": 2, "complete.particles": 8}))
        page.locator('[data-testid="stAlertContentInfo"]', has_text="Draw a digit").wait_for(timeout=TIMEOUT_MS)
        assert canvas_fully_visible(page)
        top = [[p for p in s if p[1] < 125] for s in digit_strokes(images[two])]
        draw_strokes(page, [s for s in top if len(s) > 1])
        page.locator('[data-testid="stPlotlyChart"] .gtitle', has_text="wavenet-mnist-q2: any digit").wait_for(timeout=TIMEOUT_MS)
        given = np.asarray(settled(page, "given")["z"], dtype=np.uint8)[:28, :28, 0]
        results = np.asarray(settled(page, "wavenet-mnist-q2: any digit")["z"], dtype=np.uint8)
        no_errors(page)
        assert (given[:14] > 127).sum() > 20  # the drawing reached the page
        quantized = np.where(given[:14] > 127, 255, 0)  # Q=2: ink where a pixel > 127
        for i in range(2):
            tile = results[:28, i * 30: i * 30 + 28, 0]
            np.testing.assert_array_equal(tile[:14], quantized)

        # Guess: ten real test digits (the first of each class) redrawn stroke by stroke, read by the Q=256 model
        right = 0
        for digit in range(10):
            page.goto(url_of(url, "mnist_guess", **{"guess.model": Q256}))
            page.locator('[data-testid="stAlertContentInfo"]', has_text="Draw a digit").wait_for(timeout=TIMEOUT_MS)
            if digit == 0:
                assert canvas_fully_visible(page)
            draw_strokes(page, digit_strokes(images[int(np.flatnonzero(labels == digit)[0])]))
            page.locator('[data-testid="stPlotlyChart"] .gtitle', has_text="p(digit | drawing)").wait_for(timeout=TIMEOUT_MS)
            probs = np.asarray(settled(page, "p(digit | drawing)")["y"], dtype=float)
            right += int(probs.argmax() == digit)
            no_errors(page)
        assert right >= 8, f"{right} of 10 drawn digits ranked first"


@pytest.mark.skipif(not shipped(MNIST_MODELS), reason="needs the trained MNIST models in pretrained/")
def test_stop_keeps_what_was_sampled_and_clears_the_bar():
    """The page's Stop button mid-run: the bar and the button go, a message says where it stopped, the
    digits as far as they got stay; Run again samples them whole."""
    env = {"AR_PRETRAINED_DIR": str(ROOT / "pretrained")}
    with chromium_page(1280, 720) as page, streamlit_server(env) as url:
        page.goto(url_of(url, "mnist_sample", **{"sample.naive_rows": 4, "sample.per_digit": 4}))  # 40 digits: the naive rows take seconds
        page.locator('[data-testid="stPlotlyChart"] .gtitle', has_text="of 784 pixels").first.wait_for(timeout=TIMEOUT_MS)
        page.locator('[data-testid="stMain"] button:visible', has_text="Stop").first.click()
        notice = page.locator('[data-testid="stAlertContentInfo"]', has_text="Stopped sampling at: Sampling: pixel")
        notice.wait_for(timeout=TIMEOUT_MS)
        wait_until_idle(page)
        done = int(re.search(r"pixel (\d+) of 784", notice.inner_text()).group(1))
        assert 0 < done < 784
        title = next(f["title"] for f in page.evaluate(FIGURES_JS) if "(stopped)" in f["title"])
        assert f"{done} of 784 pixels" in title
        assert page.locator('[data-testid="stProgress"]').count() == 0
        assert page.locator('[data-testid="stMain"] button:visible', has_text="Stop").count() == 0
        no_errors(page)
        page.locator('[data-testid="stMain"] button', has_text="Run again").click()
        page.locator('[data-testid="stPlotlyChart"] .gtitle', has_text="784 of 784 pixels").wait_for(timeout=TIMEOUT_MS)
        wait_until_idle(page)
        assert page.locator('[data-testid="stProgress"]').count() == 0 and not figure(page, "(stopped)")
        no_errors(page)


def test_url_settings_and_screenshots(tmp_path):
    real = shipped() and shipped(MNIST_MODELS)
    if real:
        root = ROOT / "pretrained"
    else:
        root = write_models(tmp_path / "pretrained")
        write_mnist_models(root)
    shots = ROOT / "docs" if real and update_docs() else tmp_path
    env = {"AR_PRETRAINED_DIR": str(root)}
    with streamlit_server(env) as url:
        with chromium_page(1280, 720) as page:
            # a link with settings opens the page in that state
            page.goto(url_of(url, "", **{"sampler.horizon": 120, "layout": "Side by side", "sampler.trajectories": 5}))
            page.locator('[data-testid="stPlotlyChart"] .gtitle', has_text="wavenet-fourier-unrolled").wait_for(timeout=TIMEOUT_MS)
            wait_until_idle(page)
            no_errors(page)
            horizon = page.locator('[data-testid="stSidebar"] [data-testid="stNumberInput"]', has_text="Horizon").locator("input")
            assert horizon.input_value() == "120"
            assert "sampler.horizon=120" in page.url
        for scheme in ("light", "dark"):
            with chromium_page(1280, 720, color_scheme=scheme) as page:
                suffix = "" if scheme == "light" else "_dark"
                for path, name, ready in (("", "fourier", "Error against horizon"),
                                          ("mnist_sample", "mnist_sample", "784 of 784 pixels"),
                                          ("mnist_complete", "mnist_complete", ": any digit"),
                                          ("mnist_guess", "mnist_guess", "p(digit | first 784 pixels)"),
                                          ("compare", "compare", "Quality against speed")):
                    page.goto(f"{url}/{path}")
                    page.get_by_text(ready).first.wait_for(timeout=TIMEOUT_MS)
                    wait_until_idle(page)
                    if name == "mnist_guess":  # a real test 3, redrawn with the pen: the screenshot shows a guess
                        images, labels = load_gallery()
                        draw_strokes(page, digit_strokes(images[int((labels == 3).nonzero()[0, 0])].numpy()))
                        settled(page, "p(digit | drawing)")
                        page.evaluate("window.scrollTo(0, 0)")
                    no_errors(page)
                    page.screenshot(path=str(shots / f"{name}{suffix}.png"))
                    assert (shots / f"{name}{suffix}.png").stat().st_size > 10_000
                if scheme == "dark":  # the dark theme really is dark
                    from PIL import Image

                    assert np.asarray(Image.open(shots / "fourier_dark.png").convert("L")).mean() < 100
