"""Training recipes: what `train.py` needs to know about a task (batches, evaluation, what goes into
config.json's `data` section and the model card). A recipe file in configs/ is JSON with four
sections, each checked strictly against a dataclass so a typo is an error, not a silent default.
Its optional top-level `model_type` names the family in the model registry (default "wavenet"), and
`model` is checked against that family's config class. A mixture recipe has a `mixture` section (MixtureFit) instead of `model`: it trains nothing, but
combines exported models and fits their mixing weights on the validation split."""

from __future__ import annotations

import json
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path

from engine.models import MODEL_REGISTRY, build_config, config_class


@dataclass
class TrainConfig:
    steps: int = 1000
    batch_size: int = 32
    lr: float = 3e-3
    lr_final_fraction: float = 0.05  # cosine decay to lr * this
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    unroll_weight: float = 0.0  # lambda of the n-step loss; 0 = one-step training
    unroll_origins: int = 16
    unroll_horizon: int = 8
    gumbel_tau: float = 1.0
    class_weight: float = 0.0  # lambda of the Bayes-rule classification loss (class-conditional models); 0 = off
    class_images: int = 8  # sequences per batch also scored under every class for that loss (K forwards each)
    class_temperature: float = 1.0  # that loss uses softmax(log p(x|y) / T): T > 1 keeps pushing margins of a few nats
    eval_every: int = 500
    checkpoint_every: int = 100
    log_every: int = 10
    seed: int = 0
    threads: int = 2  # CPU threads; tests use 1
    device: str = "auto"  # auto | cpu | cuda
    export_dir: str = "pretrained"
    ema_decay: float = 0.0  # > 0: keep an exponential moving average of the weights (e.g. 0.999); validation, test and export use it
    init_from: str = ""  # a pretrained/NAME folder whose weights start the run (same model config), e.g. to fine-tune
    position_lr_scale: float = 1.0  # the position_grid tables learn at lr * this (e.g. added to a trained model, from zero)


@dataclass
class MixtureFit:
    members: list = field(default_factory=list)  # pretrained/NAME folders of the same task, quantization and conditions
    weight_step: float = 0.05  # the mixing weights tried: every split of 1 into positive multiples of this


SECTIONS = ("name", "task", "notes", "model_type", "model", "mixture", "data", "train")
DEFAULT_MODEL_TYPE = "wavenet"  # every recipe written before families had names


def _default(f):
    """A dataclass field's default value, or MISSING for a required field."""
    if f.default is not MISSING:
        return f.default
    return f.default_factory() if f.default_factory is not MISSING else MISSING


def _check_section(section: str, values: dict, cls, where: str = "") -> dict:
    if not isinstance(values, dict):
        raise ValueError(f"Config section {section!r} must be a JSON object.")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ValueError(f"Unknown config key(s) {', '.join(f'{section}.{k}' for k in unknown)}; valid keys in {section!r}{where}: "
                         f"{', '.join(sorted(known))}.")
    for key, value in values.items():
        default = _default(known[key])
        if default is MISSING:  # a required field: its config class checks it
            continue
        if value is None and "None" in str(known[key].type):  # an optional field, e.g. `int | None`
            continue
        if isinstance(default, bool) or default is None:
            ok = isinstance(value, type(default)) if default is not None else True
        elif isinstance(default, float):
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        elif isinstance(default, int):
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif isinstance(default, (list, tuple)):
            ok = isinstance(value, (list, tuple))
        else:
            ok = isinstance(value, type(default))
        if not ok:
            raise ValueError(f"Config key {section}.{key} must be a {type(default).__name__}, got {value!r}.")
    return values


def get_recipe_class(task: str):
    if task == "fourier":
        from engine.recipes.fourier import FourierRecipe

        return FourierRecipe
    if task == "mnist":
        from engine.recipes.mnist import MNISTRecipe

        return MNISTRecipe
    raise ValueError(f"Unknown task {task!r}; known tasks: ['fourier', 'mnist'].")


def check_model(raw: dict) -> None:
    """Check the recipe's `model` against the config class of its `model_type` (default "wavenet"),
    which is written into `raw`; errors name the valid families or that family's valid keys."""
    model_type = raw.setdefault("model_type", DEFAULT_MODEL_TYPE)
    trainable = sorted(name for name, (cls, _) in MODEL_REGISTRY.items() if cls.trainable)
    if not isinstance(model_type, str) or model_type not in MODEL_REGISTRY:
        raise ValueError(f"Unknown model_type {model_type!r}; valid model types: {trainable}.")
    if model_type not in trainable:
        raise ValueError(f"A {model_type!r} model is not trained from a 'model' section (a mixture recipe has a 'mixture' "
                         f"section listing its member folders); model_type must be one of {trainable}.")
    _check_section("model", raw["model"], config_class(model_type), f" for model_type {model_type!r}")
    build_config(model_type, raw["model"])  # the family's own checks (ranges, required keys)


def parse_value(text: str):
    """A command-line override value: JSON if it parses (numbers, lists, true/false), else a string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def load_recipe_config(path, overrides: list[str] = ()) -> dict:
    """Read configs/NAME.json, apply `section.key=value` overrides and check every key and type."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"Config file {path} does not exist.")
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON: {e}") from None
    unknown = sorted(set(raw) - set(SECTIONS))
    if unknown:
        raise ValueError(f"Unknown top-level config key(s) {unknown} in {path}; valid: {list(SECTIONS)}.")
    for key in ("name", "task", "data"):
        if key not in raw:
            raise ValueError(f"{path} lacks the required key {key!r}.")
    if ("model" in raw) == ("mixture" in raw):
        raise ValueError(f"{path} needs exactly one of 'model' (a model to train) and 'mixture' (exported models to combine).")
    raw.setdefault("train", {})
    raw.setdefault("notes", "")
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"Override {item!r} must look like --section.key=value, e.g. --train.lr=0.001.")
        dotted, text = item.split("=", 1)
        dotted = dotted.lstrip("-")
        if dotted in ("name", "notes", "model_type"):
            raw[dotted] = text
            continue
        section = dotted.split(".", 1)[0]
        if "." not in dotted or section not in ("model", "mixture", "data", "train") or section not in raw:
            allowed = "mixture.X" if "mixture" in raw else "model.X"
            raise ValueError(f"Override {item!r}: the key must be {allowed}, data.X, train.X, model_type or name.")
        section, key = dotted.split(".", 1)
        raw[section][key] = parse_value(text)
    recipe_cls = get_recipe_class(raw["task"])
    if "mixture" in raw:
        _check_section("mixture", raw["mixture"], MixtureFit)
        fit = MixtureFit(**raw["mixture"])
        if len(fit.members) < 2 or not all(isinstance(m, str) for m in fit.members):
            raise ValueError(f"mixture.members must list at least two model folders, got {fit.members!r}.")
        if not 0 < fit.weight_step <= 0.5 or abs(round(1 / fit.weight_step) * fit.weight_step - 1) > 1e-9:
            raise ValueError(f"mixture.weight_step must divide 1 evenly and lie in (0, 0.5], e.g. 0.05; got {fit.weight_step}.")
    else:
        check_model(raw)
    _check_section("data", raw["data"], recipe_cls.data_class)
    _check_section("train", raw["train"], TrainConfig)
    return raw
