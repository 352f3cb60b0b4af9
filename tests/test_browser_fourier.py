"""The Fourier page in a real browser: it renders the forecast chart with no exception, and a slider moved
in the sidebar reaches the sampler. (docs/fourier.png comes from test_browser_views.py.)"""

from pathlib import Path

from app_models import ROOT, shipped, write_models
from browser import chromium_page, streamlit_server, wait_until_idle


def test_fourier_page_in_chromium(tmp_path):
    # the real models where shipped (else untrained stand-ins, which prove the page works)
    real = shipped()
    env = {"AR_PRETRAINED_DIR": str(ROOT / "pretrained" if real else write_models(tmp_path / "pretrained"))}
    screenshot = tmp_path / "fourier.png"
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


# The spread across trajectories of the first forecast trace (all samples of the first model, one row
# per trajectory, rows separated by gaps): 0 when every trajectory is the same.
SPREAD_JS = """() => {
  const gd = document.querySelector('[data-testid="stPlotlyChart"] .js-plotly-plot');
  if (!gd || !gd._fullData || !gd._fullData.length) return null;
  const rows = [[]];
  for (const v of Array.from(gd._fullData[0].y)) {
    if (v === null || Number.isNaN(v)) rows.push([]); else rows[rows.length - 1].push(v);
  }
  const full = rows.filter(r => r.length);
  let spread = 0;
  for (let t = 0; t < full[0].length; t++) {
    const col = full.map(r => r[t]);
    spread = Math.max(spread, Math.max(...col) - Math.min(...col));
  }
  return spread;
}"""


def test_fourier_page_reacts_to_the_temperature_slider(tmp_path):
    env = {"AR_PRETRAINED_DIR": str(write_models(tmp_path / "pretrained"))}
    with chromium_page() as page, streamlit_server(env) as url:
        page.goto(url)
        page.locator('[data-testid="stPlotlyChart"] .js-plotly-plot').first.wait_for(timeout=120_000)
        wait_until_idle(page)
        assert page.evaluate(SPREAD_JS) > 0  # temperature 1: the trajectories differ
        slider = page.locator('[data-testid="stSidebar"] [data-testid="stSlider"]', has_text="Temperature")
        slider.locator('input[type="range"], [role="slider"]').first.focus()
        page.keyboard.press("Home")  # temperature 0: greedy, every trajectory the same
        page.wait_for_function(f"() => ({SPREAD_JS})() === 0", timeout=120_000)
        wait_until_idle(page)
        assert "0.00" in slider.inner_text()
        assert page.locator('[data-testid="stException"]').count() == 0
