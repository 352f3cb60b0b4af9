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
import importlib.util, json, sys, torch
torch.set_num_threads(1)
revision, bench = sys.argv[1], sys.argv[2]
sys.path.insert(0, revision)
import engine, engine.data.fourier, engine.generation, engine.models.wavenet, engine.sampling, engine.tasks  # the revision's
spec = importlib.util.spec_from_file_location("bench_generation", bench)  # this checkout's measuring code,
gen = importlib.util.module_from_spec(spec)  # which imports the engine modules cached above
spec.loader.exec_module(gen)
with torch.no_grad():
    step, step_min = gen.mnist_sized_fast_step(*gen.mnist_sized_model())
out = {"mnist_sized_step_s": step, "mnist_sized_step_min_s": step_min}
for folder in sys.argv[3:]:
    out[f"forecast_s[{folder}]"] = gen.time_forecast(folder)["forecast_s"]
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
            run = subprocess.run([sys.executable, "-c", CHILD, str(Path(path).resolve()),
                                  str(ROOT / "bench" / "generation.py"), *(str(Path(f).resolve()) for f in args.fourier)],
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
