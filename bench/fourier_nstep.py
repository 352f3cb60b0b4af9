"""What the n-step loss buys on the Fourier task, on the validation split, on two sets of terms.

    python bench/fourier_nstep.py --models DIR ... [--val-curves 320] [--out bench/results/fourier-nstep.json]

This project's terms: teacher-forced accuracy, 8-step greedy rolling-origin accuracy from 16 evenly
spaced origins per curve after the first R samples, forecast MAE (engine.training.evaluate_series), on
every validation curve. The reference's terms (cheind/autoregressive's n-step experiment, which reports
0.699 one-step vs 0.776 unrolled): 8-step greedy accuracy from random origins, on the period-5 curves
only. The validation split is the recipe's own seed stream, extended from 64 to --val-curves curves
(the first 64 are the recipe's validation curves) so that the period-5 subset is not a dozen curves;
no test curve is read. Each model's training (steps, batch, loss settings, seconds) is copied from its
config.json and card into the JSON, so the runs compared can be checked for equal training time.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.fourier import recipe_for  # noqa: E402
from bench.machine import machine_meta  # noqa: E402
from engine.checkpoint import load_pretrained, read_config  # noqa: E402
from engine.recipes import TrainConfig, load_recipe_config  # noqa: E402
from engine.training import evaluate_series, greedy_rollouts, origin_targets  # noqa: E402


def reference_terms_accuracy(model, levels: torch.Tensor, conds: torch.Tensor, period_index: int = 0, origins: int = 64,
                             horizon: int = 8, seed: int = 0, batch_size: int = 32) -> tuple[float, int]:
    """8-step greedy accuracy from `origins` random origins (uniform over the curve, the same for every
    curve), on the curves of one period. -> (accuracy, curves)."""
    rows = conds.argmax(1) == period_index
    s, c = levels[rows], conds[rows]
    g = torch.Generator().manual_seed(seed)
    o = torch.randint(0, s.shape[1] - 1 - horizon, (origins,), generator=g)
    hits = []
    for start in range(0, s.shape[0], batch_size):
        preds = greedy_rollouts(model, s[start:start + batch_size], c[start:start + batch_size], o, horizon)
        hits.append((preds == origin_targets(s[start:start + batch_size], o, horizon)).float().flatten())
    return torch.cat(hits).mean().item(), int(rows.sum())


TRAIN_KEYS = ("command", "steps", "batch_size", "lr", "unroll_weight", "unroll_origins", "unroll_horizon", "gumbel_tau",
              "unroll_hard", "init_from")


def training_settings(folder: Path) -> dict:
    """The train section the model was made with: the last `python train.py` command of its card (the stage
    that produced these weights), read through its recipe and overrides."""
    card = (folder / "README.md").read_text() if (folder / "README.md").exists() else ""
    commands = [line.split("#")[0].split()[2:] for line in card.splitlines() if line.startswith("python train.py ")]
    if not commands:
        return {}
    args = commands[-1]
    recipe = args[args.index("--config") + 1]
    overrides = [a for a in args if a.startswith("--") and "=" in a and not a.startswith("--config")]
    return {"command": "python train.py " + " ".join(args),
            **vars(TrainConfig(**load_recipe_config(ROOT / recipe, overrides)["train"]))}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", required=True)
    parser.add_argument("--val-curves", type=int, default=320)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "fourier-nstep.json"))
    parser.add_argument("--settings-only", action="store_true",
                        help="re-read each model's training settings into the existing --out file, keeping its figures")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.settings_only:
        saved = json.loads(Path(args.out).read_text())
        for folder in args.models:
            saved["models"][Path(folder).name]["train"] = {k: training_settings(Path(folder)).get(k) for k in TRAIN_KEYS}
        Path(args.out).write_text(json.dumps(saved, indent=2) + "\n")
        return 0
    results = {}
    for folder in args.models:
        model = load_pretrained(folder)
        recipe = recipe_for(model)
        recipe.data.val_curves = args.val_curves
        levels, conds = recipe.split("val")
        started = time.perf_counter()
        ours = evaluate_series(model, levels, conds, recipe.data.low, recipe.data.high)
        ref, n5 = reference_terms_accuracy(model, levels, conds)
        train = training_settings(Path(folder))
        card = (Path(folder) / "README.md").read_text() if (Path(folder) / "README.md").exists() else ""
        how = next((line for line in card.splitlines() if " steps of batch " in line), "")
        results[Path(folder).name] = {
            "validation_ours": ours, "validation_reference_terms": {"accuracy_8_random_origins_period_5": ref, "curves": n5},
            "train": {k: train.get(k) for k in TRAIN_KEYS},
            "crop": read_config(folder)["data"]["train_params"].get("crop"), "how_trained": how,
            "evaluation_s": time.perf_counter() - started}
        print(f"{Path(folder).name}: ours {' '.join(f'{k}={v:.4f}' for k, v in ours.items())}; reference terms "
              f"(period 5, {n5} curves, random origins) {ref:.4f}")
    meta = {"split": f"val, {args.val_curves} curves (the recipe's 64 first)", **machine_meta(args.threads),
            "reference_terms": "8-step greedy accuracy, 64 random origins (seed 0) shared by all curves, period-5 curves only",
            "reference_figures": {"one_step": 0.699, "unrolled": 0.776}}
    out = Path(args.out)
    out.write_text(json.dumps({"meta": meta, "models": results}, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
