"""The MNIST pages in a real browser: a stroke drawn with the mouse on "Guess the digit" reaches the
model and the posterior chart appears; the sample grid and the completions render with no exception.
Screenshots of the three pages stay in the test's tmp folder (docs/ gets its screenshots from
test_browser_views.py, at 1280x720 in both themes)."""

from pathlib import Path

from app_models import MNIST_MODELS, ROOT, shipped, write_mnist_models
from browser import chromium_page, streamlit_server, wait_until_idle

TIMEOUT_MS = 180_000


def plot_titled(page, text: str):
    return page.locator('[data-testid="stPlotlyChart"] .gtitle', has_text=text)


def no_errors(page) -> None:
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.locator('[data-testid="stAlertContentError"]').count() == 0


def stroke(page, points) -> None:
    """One mouse stroke through points (canvas pixels) on the first canvas's drawing layer."""
    canvas = page.locator('[data-testid="stMain"] canvas.upper-canvas').first
    canvas.wait_for(timeout=TIMEOUT_MS)
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    page.mouse.move(box["x"] + points[0][0], box["y"] + points[0][1])
    page.mouse.down()
    for x, y in points[1:]:
        page.mouse.move(box["x"] + x, box["y"] + y, steps=8)
    page.mouse.up()


def test_mnist_pages_in_chromium(tmp_path):
    # the trained models where shipped (else untrained stand-ins, which prove the pages work)
    real = shipped(MNIST_MODELS)
    env = {"AR_PRETRAINED_DIR": str(ROOT / "pretrained" if real else write_mnist_models(tmp_path / "pretrained"))}
    shots = tmp_path
    shots.mkdir(parents=True, exist_ok=True)
    with chromium_page() as page, streamlit_server(env) as url:
        # A deep link as the very first request: pages live in app/views/, not app/pages/, so Streamlit
        # never falls back to its old pages-folder mode and the entrypoint's navigation always runs.
        page.goto(f"{url}/mnist_guess")
        page.locator('[data-testid="stSidebarNav"]', has_text="Fourier forecast").wait_for(timeout=TIMEOUT_MS)
        page.locator('[data-testid="stAlertContentInfo"]', has_text="Draw a digit").wait_for(timeout=TIMEOUT_MS)
        assert plot_titled(page, "p(digit | drawing)").count() == 0
        stroke(page, [(70, 60), (130, 58), (210, 60), (180, 120), (150, 180), (125, 240)])  # a 7
        plot_titled(page, "p(digit | drawing)").wait_for(timeout=TIMEOUT_MS)
        plot_titled(page, "p(digit | first pixels)").first.wait_for(timeout=TIMEOUT_MS)
        wait_until_idle(page)
        assert page.locator('[data-testid="stAlertContentInfo"]', has_text="Draw a digit").count() == 0
        assert page.locator('[data-testid="stPlotlyChart"] .barlayer .point').count() >= 10
        no_errors(page)
        page.screenshot(path=str(shots / "mnist_guess.png"))

        page.goto(f"{url}/mnist_sample")
        plot_titled(page, "784 of 784 pixels").wait_for(timeout=TIMEOUT_MS)
        wait_until_idle(page)
        no_errors(page)
        page.screenshot(path=str(shots / "mnist_sample.png"))

        page.goto(f"{url}/mnist_complete")
        plot_titled(page, ": any digit").wait_for(timeout=TIMEOUT_MS)
        wait_until_idle(page)
        no_errors(page)
        page.screenshot(path=str(shots / "mnist_complete.png"))

        # Paint the hidden region on the digit: the paint (not the digit behind it) becomes the mask.
        page.locator('[data-testid="stSidebar"] label', has_text="Paint it on the digit").click()
        page.locator('[data-testid="stAlertContentInfo"]', has_text="Paint over").wait_for(timeout=TIMEOUT_MS)
        assert plot_titled(page, ": any digit").count() == 0
        stroke(page, [(20, 140), (260, 140), (260, 160), (20, 160)])
        plot_titled(page, ": any digit").wait_for(timeout=TIMEOUT_MS)
        wait_until_idle(page)
        no_errors(page)
    for name in ("mnist_guess", "mnist_sample", "mnist_complete"):
        assert (shots / f"{name}.png").stat().st_size > 10_000
