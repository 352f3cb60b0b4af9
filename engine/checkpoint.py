"""Pretrained models as `config.json` + `model.safetensors` (no pickles), in the spirit of
huggingface/diffusers: the config is saved as written and rebuilds the model through the registry."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from engine.models import MODEL_REGISTRY, build_model, describe_model_type, model_type_of

FORMAT_VERSION = 1
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def save_pretrained(model, directory, data: dict | None = None, metrics: dict | None = None) -> Path:
    """Write directory/{config.json, model.safetensors}. `data` says what inference needs (quantization,
    scan order, what each condition index means); `metrics` are measured figures."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tmp = directory / (WEIGHTS_NAME + ".tmp")
    save_file(state, str(tmp))
    os.replace(tmp, directory / WEIGHTS_NAME)
    config = {
        "format_version": FORMAT_VERSION,
        "model_type": model_type_of(model),
        "model": asdict(model.config),
        "data": data or {},
        "metrics": metrics or {},
    }
    _atomic_write_text(directory / CONFIG_NAME, json.dumps(config, indent=2) + "\n")
    return directory


def read_config(directory) -> dict:
    """Read and check config.json; raises ValueError with a readable reason."""
    directory = Path(directory)
    path = directory / CONFIG_NAME
    if not path.is_file():
        raise ValueError(f"{directory} has no {CONFIG_NAME}; a pretrained model folder holds {CONFIG_NAME} and {WEIGHTS_NAME}.")
    try:
        config = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path} is not valid JSON: {e}") from None
    if not isinstance(config, dict):
        raise ValueError(f"{path} must hold a JSON object.")
    version = config.get("format_version")
    if version != FORMAT_VERSION:
        raise ValueError(f"{path} has format_version {version!r}; this version of the app reads format_version {FORMAT_VERSION}.")
    for key in ("model_type", "model"):
        if key not in config:
            raise ValueError(f"{path} lacks the key {key!r}.")
    return config


def _build(directory: Path, config: dict, model_type: str | None):
    """The model config.json names, refusing clearly one of another family than `model_type` asks for,
    and a `model` section that does not fit the family config.json names."""
    saved = config["model_type"]
    if saved not in MODEL_REGISTRY:
        raise ValueError(f"Unknown model type {saved!r} in {directory / CONFIG_NAME}; known types: {sorted(MODEL_REGISTRY)}.")
    if model_type is not None and model_type != saved:
        describe_model_type(model_type)  # an unknown name gets the list of known ones
        raise ValueError(f"{directory} holds a {describe_model_type(saved)[0]} ({saved!r}), not a "
                         f"{describe_model_type(model_type)[0]} ({model_type!r}); pick a {model_type!r} model folder.")
    try:
        return build_model(saved, config["model"])
    except ValueError as e:
        raise ValueError(f"{directory}/{CONFIG_NAME}: its 'model' section is not a valid {describe_model_type(saved)[0]} "
                         f"({saved!r}) config: {e}") from None


def load_pretrained(directory, device: str | torch.device = "cpu", model_type: str | None = None):
    """Build the model named by directory/config.json, load its safetensors weights strictly and return
    it in eval() mode; with `model_type`, refuse a folder of any other family. The config's `data` and
    `metrics` sections ride along as `model.data_config` and `model.metrics` (read-only metadata; no
    generation state is kept on the model)."""
    directory = Path(directory)
    config = read_config(directory)
    model = _build(directory, config, model_type)
    weights = directory / WEIGHTS_NAME
    if not weights.is_file():
        raise ValueError(f"{directory} has no {WEIGHTS_NAME}.")
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as e:
        raise ValueError(f"{weights} is corrupt or truncated and cannot be read: {e}") from None
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise ValueError(f"{weights} does not match the model in {CONFIG_NAME}: {str(e).splitlines()[0]}") from None
    for name, tensor in state.items():
        if not torch.isfinite(tensor).all():
            raise ValueError(f"{weights} holds non-finite values in {name}; the file is damaged.")
    model.data_config = dict(config.get("data", {}))
    model.metrics = dict(config.get("metrics", {}))
    model.name = directory.name
    return model.to(device).eval()


def check_folder(directory) -> None:
    """Cheap checks for listing: config.json is valid and the weights file exists with a readable
    header (tensors are not read; load_pretrained does the strict check). Raises ValueError."""
    directory = Path(directory)
    read_config(directory)
    weights = directory / WEIGHTS_NAME
    if not weights.is_file():
        raise ValueError(f"{directory} has no {WEIGHTS_NAME}.")
    try:
        with safe_open(str(weights), framework="pt") as f:
            f.keys()
    except (SafetensorError, OSError, ValueError) as e:
        raise ValueError(f"{weights} is corrupt or truncated and cannot be read: {e}") from None


def list_pretrained(root="pretrained") -> dict[str, str | None]:
    """Every model folder under root -> None if it looks loadable, else the reason it is not."""
    root = Path(root)
    found = {}
    for d in sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []:
        try:
            check_folder(d)
            found[d.name] = None
        except ValueError as e:
            found[d.name] = str(e)
    return found
