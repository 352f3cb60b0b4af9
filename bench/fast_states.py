"""CPU seconds to sample ten digits (B=10, one per class, 784 pixels), every image family's own
generation state (`model.start`) against the naive state that re-runs `log_probs` for every pixel
(engine/models/base.py's NaiveState, the oracle), same seed, with the samples compared.

    python bench/fast_states.py [--threads 1] [--budget 20] [--models pretrained/made-mnist-q2 ...]

A model is a pretrained folder (its trained weights) or a recipe in configs/ (its architecture, random
weights: the timing does not depend on the weights). The naive run stops after --budget seconds; its
time for all 784 pixels is then extrapolated from its per-pixel mean (marked "extrapolated"), and the
samples are compared over the pixels both took. Prints a table and writes bench/results/fast_states.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.machine import machine_meta  # noqa: E402
from engine.checkpoint import load_pretrained  # noqa: E402
from engine.models import build_model  # noqa: E402
from engine.models.base import NaiveState  # noqa: E402
from engine.sampling import temperature_sampler  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ["pretrained/made-mnist-q2", "pretrained/pixelcnn-mnist-q2", "pretrained/gated-pixelcnn-mnist-q2",
           "pretrained/gated-pixelcnn-mnist-q256"]


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
    K, N = model.config.cond_channels, model.sequence_length
    cond = F.one_hot(torch.arange(10) % max(K, 1), K).float() if K else None
    empty = torch.zeros(10, 0, dtype=torch.long)
    start = time.perf_counter()
    fast_seq, _, _ = sample(model.start(empty, cond), float("inf"))
    fast_s = time.perf_counter() - start  # priming included
    start = time.perf_counter()
    naive_seq, _, taken = sample(NaiveState(model, empty, cond), budget)
    naive_s = (time.perf_counter() - start) * N / taken
    return {"fast_s": fast_s, "naive_s": naive_s, "naive_extrapolated": taken < N, "naive_pixels_taken": taken,
            "speedup": naive_s / fast_s, "same_samples": bool(torch.equal(fast_seq[:, :taken], naive_seq))}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--budget", type=float, default=20.0, help="seconds the naive state may run per model")
    parser.add_argument("--models", nargs="+", default=DEFAULT)
    parser.add_argument("--out", default=str(ROOT / "bench/results/fast_states.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = {}
    print(f"{'model':55s} {'fast s':>8s} {'naive s':>9s} {'speedup':>8s}  same samples")
    for path in args.models:
        name, model = load(path)
        r = rows[name] = {"family": model.family_name, "task": "sample ten digits (B=10, 784 pixels)", **measure(model, args.budget)}
        naive = f"{r['naive_s']:.1f}{'*' if r['naive_extrapolated'] else ''}"
        print(f"{name:55s} {r['fast_s']:8.2f} {naive:>9s} {r['speedup']:7.1f}x  {r['same_samples']}", flush=True)
    print("* extrapolated from the pixels the naive state took within the budget")
    Path(args.out).write_text(json.dumps({"meta": machine_meta(args.threads), "models": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
