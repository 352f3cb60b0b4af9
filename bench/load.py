"""Load test of "Guess the digit": N browser sessions at once (Playwright contexts in one headless
Chromium) against one `streamlit run` server this script starts on 127.0.0.1.

    python bench/load.py [--sessions 20] [--seconds 180] [--port 0] [--pretrained DIR | --stand-ins]

Every session opens the page first; the clock starts when all have it. Session i then draws digit
i % 10 as one mouse stroke (slanted for i >= 10, so 30 sessions draw 30 different images), waits until
the posterior bar chart appears, times mouse-up -> chart, reads what the page shows (the posterior and
the 28x28 image the model read), clears the canvas and repeats until the time is up. Sessions 1, 6,
11, ... open "Complete a digit" once after their first guess. Afterwards, with the server stopped, the
shown images and posteriors are checked for cross-talk: each image must be nearest to the session's own
stroke among all 30 strokes (rendered locally), and each posterior must equal the page's computation
(class_posterior_by_prefix) on that image. Prints a table and writes bench/results/load.json. Only
loopback traffic; every wait has a timeout and every loop a bound.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from bench.machine import cpu_model  # noqa: E402
from browser import CHROMIUM, CHROMIUM_ARGS, free_port, wait_healthy  # noqa: E402  (tests/browser.py)
from strokes import check_crosstalk, page_model, stroke  # noqa: E402  (bench/strokes.py)

BAR, SEEN = "p(digit | drawing)", "what the model reads (28x28)"
POLL_MS = 100  # how often the browser checks for the chart: the latencies' resolution

# What the drawing part of the page shows: the bar chart's y and the image's z, as plotly received them.
READ_JS = """([bar, seen]) => {
  const out = {bar: null, seen: null};
  for (const gd of document.querySelectorAll('[data-testid="stMain"] .js-plotly-plot')) {
    const title = (gd.layout && gd.layout.title && gd.layout.title.text) || '';
    const ann = ((gd.layout && gd.layout.annotations) || []).map(a => a.text);
    const pick = v => (v && v.bdata) ? {bdata: v.bdata, dtype: v.dtype, shape: v.shape} : v;
    if (title.includes(bar) && gd.data.length) out.bar = pick(gd.data[0].y);
    if (ann.includes(seen) && gd.data.length) out.seen = pick(gd.data[0].z);
  }
  return out;
}"""
CHART_JS = """(bar) => Array.from(document.querySelectorAll('[data-testid="stMain"] .js-plotly-plot'))
  .some(gd => ((gd.layout && gd.layout.title && gd.layout.title.text) || '').includes(bar))"""


# --- the server ---------------------------------------------------------------------------------------

class Server:
    """`streamlit run app/streamlit_app.py` on 127.0.0.1:port, with its RSS and CPU time from /proc."""

    def __init__(self, port: int, env: dict[str, str], log_path: Path, app_root: Path = ROOT):
        cmd = [sys.executable, "-m", "streamlit", "run", "app/streamlit_app.py", "--server.headless", "true",
               "--server.address", "127.0.0.1", "--server.port", str(port), "--browser.gatherUsageStats", "false"]
        self.url = f"http://127.0.0.1:{port}"
        self.log = open(log_path, "w")
        self.proc = subprocess.Popen(cmd, cwd=app_root, env={**os.environ, **env}, stdout=self.log, stderr=subprocess.STDOUT)

    def wait_healthy(self, timeout: float = 90) -> None:
        wait_healthy(self.url, self.proc, timeout, self.log_tail)

    def log_tail(self, chars: int = 2000) -> str:
        self.log.flush()
        return Path(self.log.name).read_text(errors="replace")[-chars:]

    def rss_mb(self) -> float | None:
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            return None
        return None

    def cpu_s(self) -> float | None:
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime
        except (OSError, IndexError, ValueError):
            return None

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


# --- one browser session ------------------------------------------------------------------------------

async def errors_on(page) -> list[str]:
    found = []
    for testid in ("stException", "stAlertContentError"):
        loc = page.locator(f'[data-testid="{testid}"]')
        for k in range(min(await loc.count(), 3)):
            found.append(f"{testid}: {(await loc.nth(k).inner_text())[:200]}")
    return found


async def complete_once(page, url: str, ms: int) -> dict:
    """Open "Complete a digit" (a gallery digit, the default settings) and wait for the completions."""
    start = time.monotonic()
    try:
        await page.goto(f"{url}/mnist_complete", timeout=ms)
        await page.locator('[data-testid="stPlotlyChart"] .gtitle', has_text=": any digit").wait_for(timeout=ms)
        return {"seconds": round(time.monotonic() - start, 2), "errors": await errors_on(page)}
    except Exception as e:  # noqa: BLE001  (a timeout here is a finding, not a crash)
        return {"seconds": None, "errors": [f"complete: {type(e).__name__}: {str(e)[:200]}"]}


async def open_guess(page, url: str, ms: int) -> None:
    await page.goto(f"{url}/mnist_guess", timeout=ms)
    await page.locator('[data-testid="stAlertContentInfo"]', has_text="Draw a digit").wait_for(timeout=ms)


async def session(i: int, browser, url: str, ready: asyncio.Barrier, seconds: float, timeout_s: float, max_updates: int) -> dict:
    """Open the page, wait for every session to be there, then draw, wait for the chart, read it, clear;
    until `seconds` have passed. Returns what was seen and timed."""
    rec = {"session": i, "digit": i % 10, "load_s": None, "updates": [], "timeouts": 0, "errors": [], "complete": None,
           "go": None, "end": None}
    ms = int(timeout_s * 1000)
    context = None
    try:
        context = await browser.new_context(viewport={"width": 1300, "height": 1000})
        page = await context.new_page()
        page.set_default_timeout(ms)  # every wait (also locators' implicit ones) gets --timeout, not Playwright's 30 s
        start = time.monotonic()
        try:
            await open_guess(page, url, ms)
            rec["load_s"] = time.monotonic() - start
        finally:
            await ready.wait()  # the clock starts when every session has its page (or gave up)
            rec["go"] = time.monotonic()
        deadline = rec["go"] + seconds
        canvas = page.locator('[data-testid="stMain"] canvas.upper-canvas').first
        clear = page.locator('[data-testid="stMain"] button[aria-label="Reset canvas & history"]').first
        points = stroke(i)
        while time.monotonic() < deadline and len(rec["updates"]) < max_updates:
            began = time.monotonic()
            box = await canvas.bounding_box()
            await page.mouse.move(box["x"] + points[0][0], box["y"] + points[0][1])
            await page.mouse.down()
            for x, y in points[1:]:
                await page.mouse.move(box["x"] + x, box["y"] + y, steps=6)
            await page.mouse.up()
            up = time.monotonic()
            try:
                await page.wait_for_function(CHART_JS, arg=BAR, polling=POLL_MS, timeout=ms)
                latency = time.monotonic() - up
                await page.wait_for_function(f"(a) => {{ const r = ({READ_JS})(a); return r.bar && r.seen; }}", arg=[BAR, SEEN],
                                             polling=POLL_MS, timeout=ms)
            except Exception as e:  # noqa: BLE001
                rec["timeouts"] += 1
                rec["errors"].append(f"update: {type(e).__name__}: {str(e)[:200]}")
                break
            shown = await page.evaluate(READ_JS, [BAR, SEEN])
            found = await errors_on(page)
            rec["errors"] += found
            rec["updates"].append({"latency_s": latency, "draw_s": up - began, "bar": shown["bar"], "seen": shown["seen"],
                                   "errors": len(found)})
            if i % 5 == 1 and rec["complete"] is None:  # a few sessions complete a digit once, amid the guessing
                rec["complete"] = await complete_once(page, url, ms)
                rec["errors"] += rec["complete"]["errors"]
                rec["timeouts"] += rec["complete"]["seconds"] is None
                await open_guess(page, url, ms)
                continue
            cleared = time.monotonic()
            await clear.click(timeout=ms)
            try:  # cleared: the chart goes, so the next chart is the next drawing's
                await page.wait_for_function(f"(bar) => !({CHART_JS})(bar)", arg=BAR, polling=POLL_MS, timeout=ms)
                rec["updates"][-1]["clear_s"] = time.monotonic() - cleared
            except Exception as e:  # noqa: BLE001
                rec["timeouts"] += 1
                rec["errors"].append(f"clear: {type(e).__name__}: {str(e)[:200]}")
                break
    except Exception as e:  # noqa: BLE001
        rec["timeouts"] += "Timeout" in type(e).__name__
        rec["errors"].append(f"session: {type(e).__name__}: {str(e)[:200]}")
    finally:
        if rec["go"] is None:  # failed before the barrier: release the others all the same
            await ready.wait()
        rec["end"] = time.monotonic()
        if context is not None:
            await context.close()
    return rec


async def run_sessions(url: str, n: int, seconds: float, timeout_s: float, server: Server) -> tuple[list[dict], dict]:
    from playwright.async_api import async_playwright

    max_updates = int(seconds) + 1  # an update takes well over a second: this only bounds the loop
    samples = []

    async def watch_rss():
        while True:
            samples.append(server.rss_mb())
            await asyncio.sleep(1.0)

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        watcher = asyncio.create_task(watch_rss())
        ready = asyncio.Barrier(n)
        start = time.monotonic()
        try:
            records = await asyncio.wait_for(
                asyncio.gather(*(session(i, browser, url, ready, seconds, timeout_s, max_updates) for i in range(n))),
                timeout=seconds + 4 * timeout_s + 60)
        finally:
            watcher.cancel()
            await browser.close()
    peak = max((s for s in samples if s is not None), default=None)
    loads = [rec["load_s"] for rec in records if rec["load_s"] is not None]
    return records, {"duration_s": max(rec["end"] for rec in records) - min(rec["go"] for rec in records),
                     "rss_mb_peak": peak, "load_s": loads, "wall_s": time.monotonic() - start}


# --- main ---------------------------------------------------------------------------------------------

def percentile(values, q):
    return float(np.percentile(values, q)) if values else None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=180)
    parser.add_argument("--port", type=int, default=0, help="0: a free port")
    parser.add_argument("--timeout", type=float, default=120, help="seconds one page update may take before it counts as a timeout")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--pretrained", help="models folder (default: $AR_PRETRAINED_DIR or pretrained/)")
    group.add_argument("--stand-ins", action="store_true", help="untrained tiny models (tests/app_models.py): exercises the app, not the models")
    parser.add_argument("--rounds", type=int, default=1,
                        help="run the sessions this many times against the same server (new sessions each round): "
                             "server memory after each round shows whether it grows per session or levels off")
    parser.add_argument("--app-root", default=str(ROOT),
                        help="the checkout whose app/ and engine/ the server runs (default: this one), e.g. an older "
                             "revision unpacked with `git archive REV | tar -x -C DIR`, to compare before and after a change")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "load.json"))
    args = parser.parse_args(argv)
    if not 1 <= args.rounds <= 10:
        parser.error("--rounds must lie in 1..10")
    if not 1 <= args.sessions <= 200 or not 1 <= args.seconds <= 3600:
        parser.error("--sessions must lie in 1..200 and --seconds in 1..3600")
    if not os.path.exists(CHROMIUM):
        raise SystemExit(f"{CHROMIUM} is missing (apt-get install -y chromium)")

    tmp = tempfile.TemporaryDirectory(prefix="load-")
    if args.stand_ins:
        from app_models import write_mnist_models

        root = write_mnist_models(Path(tmp.name) / "pretrained")
    else:
        root = Path(args.pretrained or os.environ.get("AR_PRETRAINED_DIR") or ROOT / "pretrained").resolve()
    model_name, model = page_model(root)

    log_path = Path(tmp.name) / "streamlit.log"
    app_root = Path(args.app_root).resolve()
    server = Server(args.port or free_port(), {"AR_PRETRAINED_DIR": str(root)}, log_path, app_root)
    try:
        server.wait_healthy()
        rss_start = server.rss_mb()
        records, rounds = [], []
        for r in range(args.rounds):
            recs, timing = asyncio.run(run_sessions(server.url, args.sessions, args.seconds, args.timeout, server))
            records += recs
            rounds.append({"round": r + 1, "wall_s": round(timing["wall_s"], 1), "rss_mb_peak": timing["rss_mb_peak"],
                           "rss_mb_after": server.rss_mb(), "server_cpu_s": server.cpu_s(),
                           "updates": sum(len(rec["updates"]) for rec in recs)})
            print(f"round {r + 1}: {rounds[-1]}", file=sys.stderr)
        timing = {"duration_s": sum(t["wall_s"] for t in rounds), "wall_s": sum(t["wall_s"] for t in rounds),
                  "rss_mb_peak": max((t["rss_mb_peak"] for t in rounds if t["rss_mb_peak"] is not None), default=None),
                  "load_s": [rec["load_s"] for rec in records if rec["load_s"] is not None]}
        rss_end, cpu = server.rss_mb(), server.cpu_s()
    finally:
        server_log = server.log_tail()
        server.stop()

    crosstalk = check_crosstalk(records, model)
    latencies = [u["latency_s"] for rec in records for u in rec["updates"]]
    completes = [dict(session=rec["session"], **rec["complete"]) for rec in records if rec["complete"] is not None]
    errors = [e for rec in records for e in rec["errors"]]
    report = {
        "sessions": args.sessions, "seconds": args.seconds, "rounds": rounds, "duration_s": round(timing["duration_s"], 1),
        "app_root": str(app_root), "model": model_name, "pretrained": str(root) if not args.stand_ins else "stand-ins (untrained, tests/app_models.py)",
        "wall_s": round(timing["wall_s"], 1),
        "page_load_s": {"p50": percentile(timing["load_s"], 50), "max": max(timing["load_s"], default=None)},
        "updates": len(latencies), "updates_per_session": [len(rec["updates"]) for rec in records],
        "latency_s": {"p50": percentile(latencies, 50), "p95": percentile(latencies, 95), "max": max(latencies, default=None),
                      "poll_ms": POLL_MS},
        "draw_s_p50": percentile([u["draw_s"] for rec in records for u in rec["updates"]], 50),
        "clear_s_p50": percentile([u["clear_s"] for rec in records for u in rec["updates"] if "clear_s" in u], 50),
        "errors": {"exception_elements": sum(e.startswith("stException") for e in errors),
                   "error_alerts": sum(e.startswith("stAlertContentError") for e in errors),
                   "timeouts": sum(rec["timeouts"] for rec in records), "total": len(errors), "first": errors[:10]},
        "complete_a_digit": completes,
        "server": {"rss_mb_start": rss_start, "rss_mb_peak": timing["rss_mb_peak"], "rss_mb_end": rss_end, "cpu_s": cpu,
                   "log_tail": server_log if errors else ""},
        "crosstalk": crosstalk,
        "machine": {"cpus": os.cpu_count(), "cpu": cpu_model(), "platform": platform.platform(),
                    "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
                    "date": time.strftime("%Y-%m-%d %H:%M:%S %Z")},
    }
    tmp.cleanup()

    def fmt(v, spec=".2f"):
        return "-" if v is None else format(v, spec)

    lat, srv = report["latency_s"], report["server"]
    rows = [
        ("sessions / duration", f"{args.sessions} / {report['duration_s']:.0f} s drawing (asked {args.seconds:g} s), "
                                f"{report['wall_s']:.0f} s in all"),
        ("page load p50 / max", f"{fmt(report['page_load_s']['p50'], '.1f')} / {fmt(report['page_load_s']['max'], '.1f')} s "
                                "(all sessions at once, before the clock starts)"),
        ("model", f"{model_name} ({report['pretrained']})"),
        ("chart updates", f"{report['updates']} (per session {min(report['updates_per_session'])}..{max(report['updates_per_session'])})"),
        ("mouse-up -> chart p50 / p95 / max", f"{fmt(lat['p50'])} / {fmt(lat['p95'])} / {fmt(lat['max'])} s (polled every {POLL_MS} ms)"),
        ("one cycle, p50: draw / clear", f"{fmt(report['draw_s_p50'])} / {fmt(report['clear_s_p50'])} s (mouse strokes; "
                                         "bin -> chart gone)"),
        ("errors: exceptions / error alerts / timeouts", f"{report['errors']['exception_elements']} / {report['errors']['error_alerts']} / {report['errors']['timeouts']}"),
        ("complete a digit", ", ".join(f"s{c['session']}: {fmt(c['seconds'], '.1f')} s" for c in completes) or "-"),
        ("server RSS start / peak / end", f"{fmt(srv['rss_mb_start'], '.0f')} / {fmt(srv['rss_mb_peak'], '.0f')} / {fmt(srv['rss_mb_end'], '.0f')} MB"),
        ("server RSS after each round", " / ".join(f"{fmt(r['rss_mb_after'], '.0f')}" for r in report["rounds"]) + " MB"),
        ("server CPU seconds after each round", " / ".join(f"{fmt(r['server_cpu_s'], '.1f')}" for r in report["rounds"])
         + f" s (of {2 * report['wall_s']:.0f} core-seconds on this machine; the rest is Chromium and this script)"),
        ("server CPU time", f"{fmt(srv['cpu_s'], '.0f')} s"),
        ("cross-talk", f"{'none' if crosstalk['ok'] else 'FOUND or unchecked'}: {crosstalk['checked']} updates, "
                       f"{crosstalk['image_not_own']} images not the session's own, {crosstalk['posterior_mismatch']} posteriors "
                       f"!= posterior(shown image) (max diff {crosstalk['max_posterior_diff']:.1e}), "
                       f"similarity to own stroke >= {fmt(crosstalk['own_similarity_min'])}, "
                       f"margin over the next >= {fmt(crosstalk['margin_min'])}"),
        ("page argmax == drawn digit", f"{crosstalk['page_argmax_equals_drawn']} of {crosstalk['checked']} "
                                       f"(model on the 10 strokes: {fmt(crosstalk['template_accuracy'], '.0%')})"),
    ]
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k.ljust(width)} | {v}")
    for e in errors[:5]:
        print("  error:", e)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=float) + "\n")
    print(f"wrote {out}")
    return 0 if crosstalk["ok"] and not errors else 1


if __name__ == "__main__":
    sys.exit(main())
