"""Seconds per call of each task the app runs, at 1 and at 2 torch threads, on the shipped models: the
measurement behind engine/threads.py's TASK_THREADS.

    python bench/threads.py [--repeats 5] [--threads 1 2]

Tasks as the pages call them with their default settings: sampling 2 of each of ten digits
(wavenet-mnist-q2), completing a gallery digit's bottom half (4 completions x 32 particles = 128 rows,
wavenet-mnist-q2), the live posterior of one digit (wavenet-mnist-q2-hybrid, Guess the digit's default)
and 20 Fourier trajectories of 400 steps after 300 observed samples (wavenet-fourier). The thread
counts alternate call by call so slow phases of a shared machine hit both alike; each figure is the
median of the repeats. chosen_threads is the faster count. Writes bench/results/threads.json (--tasks
re-measures some tasks and keeps the others' figures) with the 1-minute load average, since a second
thread only helps where a second core is free.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import machine_meta  # noqa: E402
from engine.checkpoint import load_pretrained  # noqa: E402
from engine.data.mnist import load_gallery  # noqa: E402
from engine.image_tasks import class_posterior_by_prefix, complete, sample_images  # noqa: E402
from engine.tasks import forecast  # noqa: E402
from engine.threads import TASK_THREADS  # noqa: E402


def task_calls() -> dict:
    """task -> (model name, a call with the page's default settings)."""
    q2 = load_pretrained(ROOT / "pretrained" / "wavenet-mnist-q2")
    hybrid = load_pretrained(ROOT / "pretrained" / "wavenet-mnist-q2-hybrid")
    fourier = load_pretrained(ROOT / "pretrained" / "wavenet-fourier")
    gallery, _ = load_gallery()
    mask = torch.ones(28, 28, dtype=torch.bool)
    mask[14:] = False
    t = np.arange(300) * 0.02
    observed = 0.6 * np.cos(2 * np.pi * t / 6.0) + 0.3 * np.cos(4 * np.pi * t / 6.0 + 1.0)
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    return {
        "sample": ("wavenet-mnist-q2", lambda: sample_images(q2, list(range(10)), 2, generator=g())),
        "complete": ("wavenet-mnist-q2", lambda: complete(q2, gallery[0], mask, None, n=4, num_particles=32, generator=g())),
        "posterior": ("wavenet-mnist-q2-hybrid", lambda: class_posterior_by_prefix(hybrid, gallery[0])),
        "forecast": ("wavenet-fourier", lambda: forecast(fourier, observed, 400, 20, condition=1, generator=g())),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--tasks", nargs="+", default=list(TASK_THREADS), choices=list(TASK_THREADS))
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "threads.json"))
    args = parser.parse_args(argv)
    load_before = os.getloadavg()[0]
    out = Path(args.out)
    results = json.loads(out.read_text())["tasks"] if out.exists() else {}  # tasks not re-measured keep their figures
    calls = task_calls()
    for task in args.tasks:
        model_name, call = calls[task]
        times = {n: [] for n in args.threads}
        saved = TASK_THREADS[task]
        try:
            TASK_THREADS[task] = args.threads[0]  # warm-up: first calls pay for lazy allocation
            call()
            for _ in range(args.repeats):
                for n in args.threads:
                    TASK_THREADS[task] = n  # the task's own decorator applies it, as in the app
                    start = time.perf_counter()
                    call()
                    times[n].append(time.perf_counter() - start)
        finally:
            TASK_THREADS[task] = saved
        medians = {n: statistics.median(ts) for n, ts in times.items()}
        results[task] = {"model": model_name, "median_s": {str(n): m for n, m in medians.items()},
                         "all_s": {str(n): ts for n, ts in times.items()}, "chosen_threads": min(medians, key=medians.get),
                         "repeats": args.repeats, "load_1min_after": round(os.getloadavg()[0], 2)}
        print(f"{task:>10} ({model_name}): " + ", ".join(f"{n} thread(s) {m:.3f} s" for n, m in medians.items())
              + f" -> {results[task]['chosen_threads']}", flush=True)
    meta = {**machine_meta(0), "threads": args.threads, "statistic": "median of each task's repeats",
            "load_1min_before": load_before, "load_1min_after": os.getloadavg()[0]}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"meta": meta, "tasks": results}, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
