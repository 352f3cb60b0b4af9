"""Seconds per generated step, naive vs fast (Paine et al. 2016) WaveNet generation.

    python bench/generation.py [--threads 1] [--max-log2 13] [--steps 256] [--budget 10]

Part 1, as in cheind/autoregressive's published plot: kernel 2, dilations 1, 2, 4, ..., so R = 2..8192;
64 channels, Q=8, batch 32, 256 steps. Part 2: the MNIST-sized model (dilations 1..256, 1..64, 1..32,
residual 32, skip 1024, head 512, input kernel 3, Q=2, 10 conditions, B=10, R=704). Part 3: what the
Fourier page asks of the shipped model: 20 trajectories x 500 steps with engine.tasks.forecast.
Both generators are primed with a full-receptive-field prefix (the naive one's steady state). A naive
run stops after --budget seconds; its per-step mean is over the steps it took. Prints a table and
writes bench/results/generation.{json,html}.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.machine import machine_meta  # noqa: E402
from engine.generation import generate_fast, generate_naive  # noqa: E402
from engine.models.wavenet import WaveNet, WaveNetConfig  # noqa: E402
from engine.sampling import temperature_sampler  # noqa: E402


def seconds_per_step(gen, model, batch: int, cond, steps: int, budget: float) -> tuple[float, int]:
    R = model.receptive_field
    g = torch.Generator().manual_seed(0)
    prefix = torch.randint(0, model.config.quantization_levels, (batch, R), generator=g)
    it = gen(model, prefix, temperature_sampler(1.0, g), cond)
    next(it)  # priming is not a step
    start = time.perf_counter()
    taken = 0
    for _ in itertools.islice(it, steps):
        taken += 1
        if time.perf_counter() - start > budget:
            break
    return (time.perf_counter() - start) / taken, taken


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--max-log2", type=int, default=13, help="largest receptive field 2**N")
    parser.add_argument("--steps", type=int, default=256)
    parser.add_argument("--budget", type=float, default=10.0, help="seconds per naive measurement")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    parser.add_argument("--parts", default="sweep,mnist,forecast", help="comma-separated: sweep, mnist, forecast")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    parts = set(args.parts.split(","))
    rows = []
    with torch.no_grad():
        for n in range(1, args.max_log2 + 1) if "sweep" in parts else []:
            torch.manual_seed(0)
            cfg = WaveNetConfig(quantization_levels=8, residual_channels=64, skip_channels=64, head_channels=64,
                                dilations=[2**i for i in range(n)], kernel_size=2, input_kernel_size=1)
            model = WaveNet(cfg).eval()
            fast, fast_n = seconds_per_step(generate_fast, model, 32, None, args.steps, args.budget)
            naive, naive_n = seconds_per_step(generate_naive, model, 32, None, args.steps, args.budget)
            rows.append({"model": "sweep", "R": cfg.receptive_field, "batch": 32, "fast_s": fast, "naive_s": naive,
                         "fast_steps": fast_n, "naive_steps": naive_n})
            print(f"R={cfg.receptive_field:5d}  fast {fast * 1e3:8.2f} ms/step  naive {naive * 1e3:9.2f} ms/step  "
                  f"ratio {naive / fast:7.1f}x", flush=True)
        if "forecast" in parts:
            rows.append(time_forecast())
        if "mnist" not in parts:
            return write(rows, args)
        model, cond = mnist_sized_model()
        cfg = model.config
        fast, fast_min = mnist_sized_fast_step(model, cond, args.budget)
        fast_n = 784
        naive, naive_n = seconds_per_step(generate_naive, model, 10, cond, args.steps, args.budget)
        rows.append({"model": "mnist-sized", "R": cfg.receptive_field, "batch": 10, "fast_s": fast, "fast_min_s": fast_min,
                     "naive_s": naive, "fast_steps": fast_n, "naive_steps": naive_n})
        print(f"MNIST-sized (R={cfg.receptive_field}, B=10, skip 1024, head 512): fast {fast * 1e3:.2f} ms/step "
              f"(median of 7 runs; best {fast_min * 1e3:.2f}), naive {naive * 1e3:.2f} ms/step, ratio {naive / fast:.1f}x; "
              f"784 pixels: {fast * 784:.2f} s fast")
    return write(rows, args)


def mnist_sized_model() -> tuple[WaveNet, torch.Tensor]:
    """The reference's MNIST architecture at full width (random weights, seed 0) and one condition per digit."""
    d = [2**i for i in range(9)] + [2**i for i in range(7)] + [2**i for i in range(6)]
    torch.manual_seed(0)
    cfg = WaveNetConfig(quantization_levels=2, residual_channels=32, skip_channels=1024, head_channels=512,
                        dilations=d, kernel_size=2, input_kernel_size=3, cond_channels=10)
    return WaveNet(cfg).eval(), torch.eye(10)


def mnist_sized_fast_step(model, cond, budget: float = 10.0) -> tuple[float, float]:
    """(median, min) seconds per fast step over 7 runs of 784 steps: a shared 2-core VM is noisy."""
    runs = sorted(seconds_per_step(generate_fast, model, 10, cond, 784, budget)[0] for _ in range(7))
    return runs[3], runs[0]


def time_forecast(name: str = "wavenet-fourier", trajectories: int = 20, steps: int = 500, repeats: int = 3) -> dict:
    from engine import load_pretrained
    from engine.data.fourier import fourier_series
    from engine.tasks import forecast

    model = load_pretrained(Path(__file__).resolve().parents[1] / "pretrained" / name)
    dt = model.data_config["dt"]
    observed = fourier_series(torch.arange(300).numpy() * dt, [0.8, -0.3, 0.1], [0.0, 1.0, 2.0], period=6.0)
    times = []
    for r in range(repeats + 1):
        start = time.perf_counter()
        forecast(model, observed, steps, trajectories, condition=1, temperature=1.0, generator=torch.Generator().manual_seed(r))
        times.append(time.perf_counter() - start)
    best = min(times[1:])
    print(f"{name}: forecast of {trajectories} trajectories x {steps} steps (300 observed): {best:.3f} s (best of {repeats})")
    return {"model": name, "trajectories": trajectories, "steps": steps, "forecast_s": best}


def write(rows: list[dict], args) -> int:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = machine_meta(args.threads)
    (out / "generation.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    try:
        import plotly.graph_objects as go

        sweep = [r for r in rows if r["model"] == "sweep"]
        if not sweep:
            return 0
        fig = go.Figure()
        fig.add_scatter(x=[r["R"] for r in sweep], y=[r["naive_s"] for r in sweep], name="naive", mode="lines+markers")
        fig.add_scatter(x=[r["R"] for r in sweep], y=[r["fast_s"] for r in sweep], name="fast (queues)", mode="lines+markers")
        fig.update_layout(title="WaveNet generation, seconds per step (CPU, batch 32, 64 channels, Q=8)",
                          xaxis_title="receptive field R", yaxis_title="seconds per step", xaxis_type="log", yaxis_type="log")
        fig.write_html(out / "generation.html", include_plotlyjs="cdn")
    except ImportError:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
