"""Odd canvases on the two drawing pages, injected through the canvas's session-state key (its value is
the component's own {"drawing": {..., "data": PNG data URL}} payload, which AppTest passes to the page as image_data):
a fully painted canvas gets a clear warning instead of a meaningless answer; a tiny, a huge, a
grayscale and a palette PNG are read as the drawing they show. Tiny untrained stand-in models."""

import base64
import io
import json

import numpy as np
import pytest
from PIL import Image, ImageDraw
from streamlit.testing.v1 import AppTest

from app import canvas
from app_models import ROOT, write_mnist_models

ENTRYPOINT = str(ROOT / "app" / "streamlit_app.py")
COMPLETE, GUESS = "views/mnist_complete.py", "views/mnist_guess.py"
WHITE, BLACK = (255, 255, 255, 255), (0, 0, 0, 255)


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    root = write_mnist_models(tmp_path_factory.mktemp("pretrained"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AR_PRETRAINED_DIR", str(root))
        yield root


def seven(mode: str = "RGBA", size=(280, 280)) -> Image.Image:
    """A 7 in white ink on black, drawn directly in `mode`. The palette image puts white at index 0 and
    black at index 1, so reading its indices as gray levels would see black ink on a white page."""
    w, h = size
    if mode == "P":
        img, ink = Image.new("P", size, 1), 0
        img.putpalette([255, 255, 255, 0, 0, 0])
    elif mode == "L":
        img, ink = Image.new("L", size, 0), 255
    else:
        img, ink = Image.new("RGBA", size, BLACK), WHITE
    ImageDraw.Draw(img).line([(0.25 * w, 0.2 * h), (0.75 * w, 0.2 * h), (0.45 * w, 0.85 * h)], fill=ink, width=max(1, w // 14))
    return img


def inject(at: AppTest, key: str, img: Image.Image) -> AppTest:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    assert Image.open(io.BytesIO(buf.getvalue())).mode == img.mode  # the PNG keeps the mode under test
    url = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    at.session_state[key] = {"drawing": {"raw": {"objects": []}, "data": url}, "backgroundFit": None}
    return at.run()


def figures(at) -> dict[str, dict]:
    """Plotly figures by title (or first annotation, for the image grids)."""
    out = {}
    for chart in at.get("plotly_chart"):
        fig = json.loads(chart.proto.spec)
        t = fig["layout"].get("title") or {}
        name = (t.get("text") if isinstance(t, dict) else t) or (fig["layout"].get("annotations") or [{}])[0].get("text", "")
        out[name] = fig
    return out


def array(value) -> np.ndarray:
    if isinstance(value, dict):  # plotly's base64 typed array
        shape = [int(n) for n in str(value.get("shape", "-1")).split(",")]
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"]).reshape(shape)
    return np.asarray(value, dtype=float)


def guess(at: AppTest):
    """(posterior (10,), what the model reads (28, 28, 3)) from the drawing part of the page."""
    assert not at.exception and not at.error and not at.warning and not at.info
    figs = figures(at)
    probs = array(figs["p(digit | drawing)"]["data"][0]["y"])
    assert probs.shape == (10,) and probs.sum() == pytest.approx(1.0, abs=1e-5)
    return probs, array(figs["what the model reads (28x28)"]["data"][0]["z"])


def covered_warning(at: AppTest) -> None:
    assert not at.exception and not at.error
    assert [w.value for w in at.warning] == [canvas.CANVAS_COVERED]


def test_guess_page_edge_canvases(pretrained):
    at = AppTest.from_file(ENTRYPOINT, default_timeout=240)
    at.switch_page(GUESS).run()
    assert not at.exception

    inject(at, "guess.canvas", Image.new("RGBA", (280, 280), WHITE))
    covered_warning(at)
    assert "p(digit | drawing)" not in figures(at)  # no answer to a solid block
    inject(at, "guess.canvas", Image.new("L", (3, 3), 255))  # tiny and covered too
    covered_warning(at)

    reference = guess(inject(at, "guess.canvas", seven()))
    for mode in ("L", "P"):  # the same 7 as gray and palette PNGs reads exactly like the RGBA one
        probs, seen = guess(inject(at, "guess.canvas", seven(mode)))
        np.testing.assert_array_equal(seen, reference[1])
        np.testing.assert_allclose(probs, reference[0], atol=1e-6)

    _, seen = guess(inject(at, "guess.canvas", seven(size=(2000, 1500))))  # huge, not square
    assert (seen[..., 0] > 127).sum() > 20  # a stroke, framed like MNIST
    tiny = Image.new("RGBA", (3, 3), BLACK)
    tiny.putpixel((1, 1), WHITE)
    _, seen = guess(inject(at, "guess.canvas", tiny))  # one pixel of ink: scaled up to MNIST's 20x20 box
    assert (seen[..., 0] > 127).sum() == 400

    inject(at, "guess.canvas", Image.new("RGBA", (3, 3), BLACK))  # nothing drawn: the hint, no warning
    assert not at.exception and not at.warning and len(at.info) == 1 and "Draw a digit" in at.info[0].value


def test_complete_page_edge_canvases(pretrained):
    at = AppTest.from_file(ENTRYPOINT, default_timeout=240)
    at.switch_page(COMPLETE).run()
    at.radio(key="complete.source").set_value("Your drawing")
    at.number_input(key="complete.n").set_value(1)
    at.number_input(key="complete.particles").set_value(8).run()
    assert not at.exception

    inject(at, "complete.canvas", Image.new("RGBA", (280, 280), WHITE))
    covered_warning(at)
    assert not at.get("plotly_chart")  # nothing completed

    for img in (seven("L"), seven("P"), seven(size=(2000, 1500))):
        inject(at, "complete.canvas", img)
        assert not at.exception and not at.error and not at.warning and not at.info
        names = [name for name in figures(at) if name.startswith("wavenet-mnist")]
        assert names == ["wavenet-mnist-q2: any digit"]


def test_canvas_to_digit_edge_arrays():
    assert canvas.canvas_to_digit(None) is None
    with pytest.raises(ValueError, match="completely covered"):
        canvas.canvas_to_digit(np.full((280, 280, 4), 255, np.uint8))
    with pytest.raises(ValueError, match="completely covered"):
        canvas.canvas_to_digit(np.full((5, 5), 128, np.uint8), fit=False)
    thick = np.zeros((280, 280), np.uint8)
    thick[:, :200] = 255  # heavy but not covering: still read
    assert canvas.canvas_to_digit(thick).shape == (28, 28)
