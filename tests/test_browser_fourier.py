"""The Fourier page in a real browser: it renders the forecast chart with no exception, and its
screenshot (docs/fourier.png, shown in the README) is taken from the shipped models."""

from pathlib import Path

from app_models import ROOT, shipped, write_models
from browser import chromium_page, streamlit_server, wait_until_idle


def test_fourier_page_in_chromium(tmp_path):
    if shipped():  # the real models: this screenshot is the one the README shows
        env, screenshot = {"AR_PRETRAINED_DIR": str(ROOT / "pretrained")}, ROOT / "docs" / "fourier.png"
    else:  # untrained stand-ins: prove the page works, but keep their noise out of docs/
        env, screenshot = {"AR_PRETRAINED_DIR": str(write_models(tmp_path / "pretrained"))}, tmp_path / "fourier.png"
    with chromium_page() as page, streamlit_server(env) as url:
        page.goto(url)
        chart = page.locator('[data-testid="stPlotlyChart"] .js-plotly-plot')
        chart.first.wait_for(timeout=120_000)
        wait_until_idle(page)
        assert page.locator('[data-testid="stException"]').count() == 0
        assert page.locator('[data-testid="stAlertContentError"]').count() == 0
        assert page.locator('[data-testid="stPlotlyChart"] .scatterlayer .trace').count() >= 5  # curve, observed, 3 per model
        Path(screenshot).parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(screenshot), full_page=False)
    assert Path(screenshot).stat().st_size > 10_000
