"""The Compare page in a real browser (Playwright + Debian's Chromium) on tiny stand-ins of every family:
a person picks a second model in the multiselect, both sample side by side, and the test reads both
sample images and the quality/speed scatter (its points and the "not measured" note) from the page."""

import json

import numpy as np

from browser import chromium_page, streamlit_server, wait_until_idle
from test_app_compare import stand_in_name, write_family_models, write_results
from test_browser_mnist import TIMEOUT_MS, no_errors, plot_titled

FIRST, SECOND = stand_in_name("made"), stand_in_name("gated_pixelcnn")

READ_PLOT = """el => {
    const plot = el.querySelector('.js-plotly-plot');
    const trace = plot._fullData[0];
    const title = plot.layout.title && (plot.layout.title.text || plot.layout.title);
    return {title: title, type: trace.type, z: trace.z ? Array.from(trace.z, row => Array.from(row, px => Array.from(px))) : null,
            traces: plot._fullData.map(t => ({x: Array.from(t.x || []), y: Array.from(t.y || []),
                                              names: Array.from(t.customdata || [])})),
            notes: (plot.layout.annotations || []).map(a => a.text)};
}"""


def test_pick_two_models_sample_and_read_the_scatter(tmp_path):
    root = write_family_models(tmp_path / "pretrained")
    names = sorted(p.name for p in root.iterdir())
    measured = {n: 0.1 + 0.01 * i for i, n in enumerate(names) if n != SECOND}
    results = write_results(tmp_path / "compare.json", root, measured)
    env = {"AR_PRETRAINED_DIR": str(root), "AR_COMPARE_RESULTS": str(results)}
    query = f"compare.models={json.dumps([FIRST])}&compare.samples=1&compare.complete.n=1&compare.complete.particles=2"
    with chromium_page() as page, streamlit_server(env) as url:
        page.goto(f"{url}/compare?{query}")
        page.locator('[data-testid="stAlertContentInfo"]', has_text="Pick two to four models").wait_for(timeout=TIMEOUT_MS)
        # pick the second model the way a person does: open the multiselect, type, choose
        picker = page.locator('[data-testid="stSidebar"] [data-testid="stMultiSelect"]')
        picker.locator("input").click()
        page.keyboard.type(SECOND)
        page.locator('[role="option"]', has_text=SECOND).first.click()
        page.keyboard.press("Escape")
        plot_titled(page, "Quality against speed").wait_for(timeout=TIMEOUT_MS)
        wait_until_idle(page)
        no_errors(page)
        samples = plot_titled(page, "784/784 px")
        assert samples.count() == 2
        images = []
        for i in range(2):
            chart = page.locator('[data-testid="stPlotlyChart"]', has=page.locator(".gtitle", has_text="784/784 px")).nth(i)
            read = chart.evaluate(READ_PLOT)
            assert read["type"] == "image"
            z = np.asarray(read["z"], dtype=float)
            assert z.shape == (28, 28, 3) and ((z == 0) | (z == 255)).all()  # a whole Q=2 digit, ink or paper
            images.append(z)
        assert not np.array_equal(images[0], images[1])  # two different models, two different samples
        for name in (FIRST, SECOND):
            page.locator('[data-testid="stMarkdownContainer"] strong', has_text=name).first.wait_for(timeout=TIMEOUT_MS)

        scatter = page.locator('[data-testid="stPlotlyChart"]', has=page.locator(".gtitle", has_text="Quality against speed"))
        read = scatter.evaluate(READ_PLOT)
        points = {n: (x, y) for t in read["traces"] for n, x, y in zip(t["names"], t["x"], t["y"])}
        assert set(points) == set(measured)  # one point per measured model; the unmeasured one is not a point at 0
        assert all(x > 0 and y > 0 for x, y in points.values())
        assert points[FIRST][1] == measured[FIRST]
        assert read["notes"] == [f"not measured: {SECOND}"]
        page.screenshot(path=str(tmp_path / "compare.png"), full_page=True)
    assert (tmp_path / "compare.png").stat().st_size > 10_000
