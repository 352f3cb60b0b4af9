"""Test-split quality of the shipped Fourier WaveNets, overall and per period (the condition).

    python bench/fourier.py [--threads 1] [--models DIR ...] [--split test]

Rebuilds each model's test curves from the data parameters stored in its config.json (the same seed
streams train.py used, so no curve was seen in training) and measures what train.py measures
(teacher-forced accuracy, 8-step greedy rolling-origin accuracy, forecast MAE at several horizons),
then the same on the curves of each period. Prints a table and writes bench/results/fourier.json.
About a minute per model on one CPU core.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.machine import machine_meta  # noqa: E402
from engine.checkpoint import list_pretrained, load_pretrained, read_config  # noqa: E402
from engine.recipes.fourier import FourierData, FourierRecipe  # noqa: E402
from engine.training import evaluate_series  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def recipe_for(model) -> FourierRecipe:
    """The recipe a model was trained with, from the data parameters its config.json records."""
    dc = model.data_config
    if dc.get("task") != "fourier":
        raise ValueError(f"not a Fourier model (task {dc.get('task')!r})")
    known = set(FourierData.__dataclass_fields__)
    return FourierRecipe({k: v for k, v in dc["train_params"].items() if k in known}, model.config)


def evaluate_by_condition(model, split: str = "test") -> dict:
    """{"all": metrics, "<condition name>": metrics, ...} on the recipe's split."""
    recipe = recipe_for(model)
    levels, conds = recipe.split(split)
    out = {"all": {"curves": levels.shape[0], **recipe.evaluate(model, split, "cpu")}}
    if conds is not None:
        which = conds.argmax(1)
        for k, name in enumerate(model.data_config.get("conditions", [])):
            rows = which == k
            if rows.any():
                out[name] = {"curves": int(rows.sum()),
                             **evaluate_series(model, levels[rows], conds[rows], recipe.data.low, recipe.data.high)}
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--models", nargs="*", help="pretrained folders (default: every Fourier model in pretrained/)")
    parser.add_argument("--split", default="test", choices=["val", "test"])
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "fourier.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    folders = args.models or [str(ROOT / "pretrained" / name) for name, err in list_pretrained(ROOT / "pretrained").items()
                              if err is None and read_config(ROOT / "pretrained" / name)["data"].get("task") == "fourier"]
    results = {}
    for folder in folders:
        model = load_pretrained(folder)
        start = time.perf_counter()
        results[Path(folder).name] = by = evaluate_by_condition(model, args.split)
        print(f"\n{Path(folder).name} ({args.split} split, {time.perf_counter() - start:.0f} s)")
        keys = [k for k in by["all"] if k != "curves"]
        short = {"teacher_forced_accuracy": "teacher-forced", "rolling_origin_accuracy_8": "8-step RO"}
        print(f"{'curves':>22} {'n':>4} " + " ".join(f"{short.get(k, k):>14}" for k in keys))
        for name, m in by.items():
            print(f"{name:>22} {m['curves']:4d} " + " ".join(f"{m[k]:14.4f}" for k in keys))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"split": args.split, **machine_meta(args.threads)}
    out.write_text(json.dumps({"meta": meta, "models": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
