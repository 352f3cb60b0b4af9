"""Model cards: the README.md that train.py writes beside config.json and model.safetensors, saying how
the model was made (the exact command), on what data, and what it measured."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from engine.models import build_model, describe_model_type
from engine.recipes import DEFAULT_MODEL_TYPE, TrainConfig

METRIC_NOTES = {
    "teacher_forced_accuracy": "next value predicted exactly (argmax = true level), given the true past",
    "rolling_origin_accuracy_8": "8-step greedy forecasts from 16 evenly spaced origins per curve: fraction of exact levels",
    "mae_h1": "mean absolute error of the greedy forecast 1 step ahead, in signal units",
    "mae_h8": "the same, 8 steps ahead", "mae_h32": "the same, 32 steps ahead", "mae_h128": "the same, 128 steps ahead",
    "pixel_accuracy": "pixel predicted exactly (argmax = true level) given the true pixels before it and the true digit",
    "nll_nats_per_image": "-log p(image | digit) in nats, summed over the 784 pixels",
    "bits_per_dim": "the same in bits per pixel",
    "bayes_accuracy": "argmax_y p(image | y) p(y) with a uniform prior = the true digit",
}


def training_command(argv: list[str]) -> str:
    """The command that reproduces the run: the recipe plus overrides, without run-management flags."""
    keep, skip = [], False
    for a in argv:
        if skip or a == "--fresh" or a.startswith(("--runs=", "--time-budget=")):
            skip = False
            continue
        if a in ("--runs", "--time-budget"):
            skip = True
            continue
        keep.append(a)
    return "python train.py " + " ".join(shlex.quote(a) for a in keep)


def metrics_section(config: dict, metrics: dict, when: str = "at the end of training") -> str:
    """The card's test-metrics table."""
    def meaning(key: str) -> str:
        if "_after_" in key:
            return f"the same, reading only the first {key.rsplit('_', 1)[1].replace('pct', '%')} of the pixels (raster order)"
        return METRIC_NOTES.get(key, "").replace("|", "\\|")

    rows = "\n".join(f"| {k} | {v:.4f} | {meaning(k)} |" for k, v in metrics.items())
    subset = config["data"].get("eval_test_images") or config["data"].get("test_curves")
    scope = f", {subset} {'images' if 'eval_test_images' in config['data'] else 'curves'}" if subset else ""
    return f"""## Metrics (test split{scope})

| metric | value | meaning |
|---|---|---|
{rows}

Measured by `train.py` {when} (`recipe.evaluate(model, "test")`).
"""


def write_card(export: Path, config: dict, recipe, metrics: dict, command: str, train_seconds: float | None, device: str) -> None:
    model_cfg = config["model"]
    model_type = config.get("model_type", DEFAULT_MODEL_TYPE)
    model = build_model(model_type, model_cfg)
    family, _ = describe_model_type(model_type)
    family = f"{family} ({model.family_paper})" if model.family_paper else family
    parameters = sum(p.numel() for p in model.parameters())
    note = model.architecture_note()
    steps = config["train"].get("steps", TrainConfig.steps)
    took = f" in {train_seconds / 60:.0f} min" if train_seconds else ""
    ema = config["train"].get("ema_decay", 0.0)
    averaged = (f" The weights shipped (and measured below) are an exponential moving average of the training weights, decay {ema}."
                if ema else "")
    arch = ", ".join(f"{k}={json.dumps(v)}" for k, v in model_cfg.items())
    dropped = (f" Dropout {model_cfg['dropout']} was applied in training only; the model runs without it."
               if model_cfg.get("dropout") else "")
    kind = (f"conditional on {model_cfg['cond_channels']} classes ({', '.join(recipe.data_config().get('conditions', []))})"
            if model_cfg.get("cond_channels") else "unconditional")
    text = f"""# {config['name']}

{family}, {kind}, trained by `train.py` from `configs/{config['name']}.json`.

## How it was made

```
{command}
```

{steps} steps of batch {config['train'].get('batch_size', TrainConfig.batch_size)} on {device}{took}.{averaged}

## Data

{recipe.card_data_text()}

## Architecture

`model_type="{model_type}"`, `{arch}`; {parameters:,} parameters{"; " + note if note else ""}.{dropped}

{config.get('notes', '')}

{metrics_section(config, metrics)}"""
    (export / "README.md").write_text(text)


def write_mixture_card(export: Path, config: dict, recipe, metrics: dict, command: str, rows: list[dict], best: dict,
                       members: list, took: str) -> None:
    """The card of a mixture recipe: its members, the validation score of every weighting tried, the test metrics."""
    folders = config["mixture"]["members"]
    table = "\n".join(f"| {' / '.join(f'{w:g}' for w in r['weights'])} | {r['pixel_accuracy']:.6f} | {r['nll_nats_per_image']:.2f} |"
                      + (" chosen |" if r is best else " |") for r in rows)
    listed = "\n".join(f"- `{folder}` (weight {w:g}): {m.metrics.get('pixel_accuracy', float('nan')):.4f} test pixel accuracy, "
                       f"{m.metrics.get('nll_nats_per_image', float('nan')):.2f} nats NLL on its own"
                       for folder, w, m in zip(folders, best["weights"], members))
    families = sorted({f"{m.family_name} ({m.family_paper})" if m.family_paper else m.family_name for m in members})
    n_val = config["data"].get("eval_val_images")
    val = f"the first {n_val:,} images of the validation split" if n_val else "all the validation images"
    text = f"""# {config['name']}

A mixture of {len(members)} models ({", ".join(families)}), made by `train.py` from `configs/{config['name']}.json`: at
every pixel it predicts p(x_t | x_<t, y) = sum_m w_m p_m(x_t | x_<t, y), the weighted mean of its members' next-pixel
probabilities. Each mixed prediction is a distribution, so the product over pixels is a normalized model of the image:
likelihoods, Bayes-rule classification, sampling and completion work on it as on one of them, at the cost of running
every member. The members' parameters are stored in this folder's model.safetensors; it does not need their folders.

## How it was made

```
{command}
```

Nothing was trained. The members:

{listed}

Every split of 1 into multiples of {config['mixture']['weight_step']:g} was scored on {val} (teacher forced, true digit; one forward per
member), and the weighting with the highest pixel accuracy was kept (ties to the lower NLL), on {took} (the test evaluation
below included).

| weights | validation pixel accuracy | validation NLL (nats/image) | |
|---|---|---|---|
{table}

## Data

{recipe.card_data_text()}

{config.get('notes', '')}

{metrics_section(config, metrics, "after choosing the weights")}"""
    (export / "README.md").write_text(text)
