"""Real-browser helpers for app tests: start `streamlit run` on a free port and drive Debian's
Chromium through Playwright. Tests skip (not fail) when Chromium or Playwright is missing."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


def update_docs() -> bool:
    """AR_UPDATE_DOCS=1: the browser tests write their screenshots of the shipped models into docs/ (the
    README shows them); otherwise a test run leaves the checkout untouched."""
    return os.environ.get("AR_UPDATE_DOCS", "") not in ("", "0")


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 90, log_tail=lambda: "") -> None:
    """Wait until the streamlit server at url answers its health check; a clear error (with the tail
    of its log) if it exits first or stays silent past the timeout."""
    deadline = time.time() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with code {proc.returncode} before answering on {url}:\n{log_tail()}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.read().strip() == b"ok":
                    return
        except OSError:
            pass
        if time.time() > deadline:
            raise RuntimeError(f"streamlit did not answer on {url}/_stcore/health within {timeout} s:\n{log_tail()}")
        time.sleep(0.25)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def streamlit_server(env: dict[str, str] | None = None, script: str = "app/streamlit_app.py", timeout: float = 90):
    """Yield the base URL of `streamlit run script` (from the repo root), stopped afterwards."""
    port = free_port()
    cmd = [sys.executable, "-m", "streamlit", "run", script, "--server.headless", "true", "--server.address", "127.0.0.1",
           "--server.port", str(port), "--browser.gatherUsageStats", "false"]
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    log = open(ROOT / ".pytest_cache" / f"streamlit-{port}.log", "w") if (ROOT / ".pytest_cache").is_dir() else subprocess.DEVNULL
    proc = subprocess.Popen(cmd, cwd=ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc, timeout)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if log is not subprocess.DEVNULL:
            log.close()


@contextlib.contextmanager
def chromium_page(width: int = 1500, height: int = 1000, color_scheme: str = "light"):
    """A Playwright page in headless Chromium with the given viewport and system colour scheme ('light'
    or 'dark': Streamlit follows it); skips the test when either is missing."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing (apt-get install -y chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the playwright Python package is missing (pip install playwright; never `playwright install`)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height}, color_scheme=color_scheme)
            yield page
        finally:
            browser.close()


def wait_until_idle(page, timeout_ms: int = 120_000) -> None:
    """Wait until the script run finished: the app view exists and the 'running' status is gone."""
    page.wait_for_selector('[data-testid="stApp"]', timeout=timeout_ms)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
        " || !document.querySelector('[data-testid=\"stStatusWidget\"]').innerText.match(/Running|Stop/)",
        timeout=timeout_ms,
    )
