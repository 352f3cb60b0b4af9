"""Generation speed of two code revisions, measured in alternating processes in the same minutes.

    git worktree add /tmp/base <commit>
    python bench/compare_revisions.py /tmp/base . [--rounds 3]

This project's 2-core VM changes speed by up to 2x within the hour, so a figure measured today cannot
be compared with one from yesterday. This script runs each revision's engine in its own process,
alternating, and prints per round the MNIST-sized fast step (R=704, B=10, skip 1024, head 512,
median of 7 x 784 steps) and the Fourier page's forecast (20 trajectories x 500 steps, best of 3)
for every Fourier model folder given with --fourier (default: this checkout's pretrained/wavenet-fourier).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import itertools, json, statistics, sys, time, torch
torch.set_num_threads(1)
sys.path.insert(0, sys.argv[1])
from engine import load_pretrained
from engine.data.fourier import fourier_series
from engine.generation import generate_fast
from engine.models.wavenet import WaveNet, WaveNetConfig
from engine.sampling import temperature_sampler
from engine.tasks import forecast
d = [2**i for i in range(9)] + [2**i for i in range(7)] + [2**i for i in range(6)]
torch.manual_seed(0)
cfg = WaveNetConfig(quantization_levels=2, residual_channels=32, skip_channels=1024, head_channels=512,
                    dilations=d, kernel_size=2, input_kernel_size=3, cond_channels=10)
model, cond, g = WaveNet(cfg).eval(), torch.eye(10), torch.Generator().manual_seed(0)
prefix = torch.randint(0, 2, (10, 704), generator=g)
steps = []
with torch.no_grad():
    for _ in range(7):
        it = generate_fast(model, prefix, temperature_sampler(1.0, g), cond); next(it)
        t = time.perf_counter()
        for _ in itertools.islice(it, 784): pass
        steps.append((time.perf_counter() - t) / 784)
out = {"mnist_sized_step_s": statistics.median(steps), "mnist_sized_step_min_s": min(steps)}
observed = fourier_series(torch.arange(300).numpy() * 0.02, [0.8, -0.3, 0.1], [0.0, 1.0, 2.0], period=6.0)
for folder in sys.argv[2:]:
    m, times = load_pretrained(folder), []
    for r in range(4):
        t = time.perf_counter()
        forecast(m, observed, 500, 20, condition=1, temperature=1.0, generator=torch.Generator().manual_seed(r))
        times.append(time.perf_counter() - t)
    out[f"forecast_s[{folder}]"] = min(times[1:])
print(json.dumps(out))
"""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("revisions", nargs=2, help="two checkouts (e.g. a git worktree of the base commit, and .)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--fourier", nargs="*", default=[str(ROOT / "pretrained" / "wavenet-fourier")],
                        help="Fourier model folders to time with each revision's code")
    args = parser.parse_args(argv)
    for path in args.revisions:
        if not (Path(path) / "engine" / "generation.py").is_file():
            print(f"error: {path} is not a checkout of this project (no engine/generation.py)", file=sys.stderr)
            return 2
    for r in range(args.rounds):
        for path in args.revisions:
            run = subprocess.run([sys.executable, "-c", CHILD, str(Path(path).resolve()), *args.fourier],
                                 capture_output=True, text=True, env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
            if run.returncode:
                print(f"error: {path}: {run.stderr.strip().splitlines()[-1] if run.stderr.strip() else run.returncode}", file=sys.stderr)
                return 1
            res = json.loads(run.stdout.strip().splitlines()[-1])
            fc = "  ".join(f"forecast {Path(k[12:-1]).name} {v:.3f} s" for k, v in res.items() if k.startswith("forecast"))
            print(f"round {r + 1}  {path:<24} step {res['mnist_sized_step_s'] * 1e3:.2f} ms "
                  f"(min {res['mnist_sized_step_min_s'] * 1e3:.2f})  {fc}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
