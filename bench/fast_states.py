"""Seconds to sample ten digits (B=10, one per class, 784 pixels), every image family's own
generation state (`model.start`) against the naive state that re-runs `log_probs` for every pixel
(engine/models/base.py's NaiveState, the oracle), same seed, with the samples compared; and for a
pretrained model the Guess page's live posterior (class_posterior_by_prefix on one digit, median of 5).

    python bench/fast_states.py [--threads 1] [--budget 20] [--models pretrained/made-mnist-q2 ...]

A model is a pretrained folder (its trained weights) or a recipe in configs/ (its architecture, random
weights: the timing does not depend on the weights). The naive run stops after --budget seconds; its
time for all 784 pixels is then extrapolated from its per-pixel mean (marked "extrapolated"), and the
samples are compared over the pixels both took. Both wall-clock and CPU seconds (time.process_time) are
kept, with the machine's load average: on a shared machine the CPU seconds are the fairer figure.
Prints a table and writes bench/results/fast_states.json (the models measured replace their rows; the others stay).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.machine import machine_meta  # noqa: E402
from engine.checkpoint import load_pretrained  # noqa: E402
from engine.data.mnist import load_gallery  # noqa: E402
from engine.image_tasks import class_posterior_by_prefix  # noqa: E402
from engine.models import build_model  # noqa: E402
from engine.models.base import NaiveState  # noqa: E402
from engine.sampling import temperature_sampler  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ["pretrained/made-mnist-q2", "pretrained/pixelcnn-mnist-q2", "pretrained/gated-pixelcnn-mnist-q2",
           "pretrained/gated-pixelcnn-mnist-q256", "pretrained/pixelsnail-mnist-q2", "pretrained/transformer-mnist-q2",
           "pretrained/transformer-mnist-q256", "pretrained/pixelcnnpp-mnist-q256"]


def load(path: str):
    """A pretrained folder, or a recipe (architecture only, random weights) -> (name, model in eval mode)."""
    p = ROOT / path
    if p.is_dir():
        return p.name, load_pretrained(p)
    recipe = json.loads(p.read_text())
    return f"{recipe['name']} (recipe, random weights)", build_model(recipe["model_type"], recipe["model"]).eval()


@torch.no_grad()
def sample(state, budget: float, seed: int = 0) -> tuple[torch.Tensor, float, int]:
    """Sample until the image is complete or `budget` seconds pass -> (levels (B, taken), seconds, taken)."""
    draw = temperature_sampler(1.0, torch.Generator().manual_seed(seed))
    start, seq = time.perf_counter(), []
    while state.log_probs is not None and time.perf_counter() - start < budget:
        seq.append(draw(state.log_probs))
        state.step(seq[-1])
    return torch.stack(seq, dim=1), time.perf_counter() - start, len(seq)


def measure(model, budget: float) -> dict:
    """Wall-clock and CPU seconds (this process's, time.process_time: what other jobs on a shared machine
    take is not counted) of both states; the speedup is of CPU seconds."""
    K, N = model.config.cond_channels, model.sequence_length
    cond = F.one_hot(torch.arange(10) % max(K, 1), K).float() if K else None
    empty = torch.zeros(10, 0, dtype=torch.long)
    wall, cpu = time.perf_counter(), time.process_time()
    fast_seq, _, _ = sample(model.start(empty, cond), float("inf"))
    fast_s, fast_cpu_s = time.perf_counter() - wall, time.process_time() - cpu  # priming included
    wall, cpu = time.perf_counter(), time.process_time()
    naive_seq, _, taken = sample(NaiveState(model, empty, cond), budget)
    naive_s, naive_cpu_s = (time.perf_counter() - wall) * N / taken, (time.process_time() - cpu) * N / taken
    return {"fast_s": fast_s, "fast_cpu_s": fast_cpu_s, "naive_s": naive_s, "naive_cpu_s": naive_cpu_s,
            "naive_extrapolated": taken < N, "naive_pixels_taken": taken, "speedup": naive_cpu_s / fast_cpu_s,
            "same_samples": bool(torch.equal(fast_seq[:, :taken], naive_seq)), "load_average_1min": os.getloadavg()[0]}


def live_posterior(model, repeats: int = 5) -> dict:
    """The Guess page's call: class_posterior_by_prefix on one gallery digit, median wall and CPU seconds."""
    if not getattr(model, "data_config", None):
        return {}
    image = load_gallery()[0][0]
    class_posterior_by_prefix(model, image)  # warm-up
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        class_posterior_by_prefix(model, image)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return {"live_posterior_s": statistics.median(walls), "live_posterior_cpu_s": statistics.median(cpus)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--budget", type=float, default=20.0, help="seconds the naive state may run per model")
    parser.add_argument("--models", nargs="+", default=DEFAULT)
    parser.add_argument("--out", default=str(ROOT / "bench/results/fast_states.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = {}
    print(f"{'model':45s} {'fast s (CPU)':>14s} {'naive s (CPU)':>15s} {'speedup':>8s}  same samples  load")
    for path in args.models:
        name, model = load(path)
        r = rows[name] = {"family": model.family_name, "task": "sample ten digits (B=10, 784 pixels)", **measure(model, args.budget),
                          **live_posterior(model)}
        star = "*" if r["naive_extrapolated"] else ""
        print(f"{name:45s} {r['fast_s']:6.2f} ({r['fast_cpu_s']:5.2f}) {r['naive_s']:6.1f}{star} ({r['naive_cpu_s']:5.1f}) "
              f"{r['speedup']:7.1f}x  {str(r['same_samples']):12s}  {r['load_average_1min']:.1f}"
              + (f"  live posterior {r['live_posterior_s'] * 1000:.0f} ms ({r['live_posterior_cpu_s'] * 1000:.0f} ms CPU)" if "live_posterior_s" in r else ""),
              flush=True)
    print("* extrapolated from the pixels the naive state took within the budget")
    out = Path(args.out)
    kept = json.loads(out.read_text()).get("models", {}) if out.exists() else {}  # other models' rows stay
    out.write_text(json.dumps({"meta": machine_meta(args.threads), "models": {**kept, **rows}}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
