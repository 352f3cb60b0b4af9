"""Stand-in pretrained folders for app tests: the tiny smoke recipe's architecture with untrained
weights, exported exactly as train.py exports (save_pretrained + the recipe's data config)."""

from __future__ import annotations

import re
from pathlib import Path

import torch

from engine.checkpoint import list_pretrained, save_pretrained
from engine.models import build_model
from engine.recipes import get_recipe_class, load_recipe_config

ROOT = Path(__file__).resolve().parents[1]
FOURIER_MODELS = ("wavenet-fourier", "wavenet-fourier-unrolled")


def write_models(root: Path, names=FOURIER_MODELS, recipe: str = "configs/smoke-fourier.json") -> Path:
    """root/NAME/{config.json, model.safetensors} for each name; returns root."""
    config = load_recipe_config(ROOT / recipe, [])
    for seed, name in enumerate(names):
        torch.manual_seed(seed)
        model = build_model("wavenet", config["model"])
        data = get_recipe_class(config["task"])(config["data"], model.config).data_config()
        save_pretrained(model, Path(root) / name, data=data)
    return Path(root)


def shipped(names=FOURIER_MODELS) -> bool:
    """Whether pretrained/ in the repo holds these models (the real ones, trained by train.py)."""
    found = list_pretrained(ROOT / "pretrained")
    return all(name in found and found[name] is None for name in names)


MNIST_MODELS = ("wavenet-mnist-q2", "wavenet-mnist-q256")


def shipped_image_models() -> list[str]:
    """Every usable image model in the repo's pretrained/ (config.json data.task "mnist", weights present),
    whatever its family: the app tests run each on every page, so a model that lands is tested at once."""
    from engine.checkpoint import WEIGHTS_NAME, read_config

    root = ROOT / "pretrained"
    return sorted(name for name, problem in list_pretrained(root).items()
                  if problem is None and read_config(root / name).get("data", {}).get("task") == "mnist"
                  and (root / name / WEIGHTS_NAME).is_file())


def write_mnist_models(root: Path, names=MNIST_MODELS, recipe: str = "configs/smoke-mnist.json") -> Path:
    """root/NAME/ for the MNIST stand-ins: the smoke recipe's tiny architecture, untrained, with
    quantization read from the name's end (q2 -> Q=2, q256 -> Q=256); returns root."""
    for seed, name in enumerate(names):
        match = re.search(r"-q(\d+)", name)
        Q = int(match.group(1)) if match else 2
        config = load_recipe_config(ROOT / recipe, [f"--model.quantization_levels={Q}"])
        torch.manual_seed(seed)
        model = build_model("wavenet", config["model"])
        data = get_recipe_class(config["task"])(config["data"], model.config).data_config()
        save_pretrained(model, Path(root) / name, data=data)
    return Path(root)
