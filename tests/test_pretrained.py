"""Every shipped model loads strictly and its config says what the app needs."""

from dataclasses import replace
from pathlib import Path

import pytest

from engine import load_pretrained
from engine.models import build_model, can_start_from
from engine.recipes import load_recipe_config
from engine.recipes.mixture import weight_grid

ROOT = Path(__file__).resolve().parents[1] / "pretrained"
FOLDERS = sorted(p for p in ROOT.iterdir() if p.is_dir()) if ROOT.is_dir() else []


def test_pretrained_folder_is_not_empty():
    assert FOLDERS, "pretrained/ ships no models"


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: p.name)
def test_every_pretrained_model_loads_strictly(folder):
    assert {"config.json", "model.safetensors", "README.md"} <= {p.name for p in folder.iterdir()}
    model = load_pretrained(folder)
    assert model.data_config.get("task") in {"fourier", "mnist"}
    assert "quantization" in model.data_config
    assert model.metrics, "the model card metrics are missing from config.json"
    if model.config.cond_channels:
        assert len(model.data_config["conditions"]) == model.config.cond_channels


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: p.name)
def test_every_pretrained_model_has_its_recipe(folder):
    """configs/NAME.json exists, passes the recipe checks and builds the shipped architecture (dropout,
    which acts in training only, aside); the card names the recipe."""
    config = load_recipe_config(ROOT.parent / "configs" / f"{folder.name}.json")
    assert config["name"] == folder.name
    shipped = load_pretrained(folder).config
    if "mixture" in config:  # its members are the recipe's member folders as shipped, under a grid weighting
        members = [load_pretrained(ROOT.parent / m).config for m in config["mixture"]["members"]]
        assert shipped.member_configs == members
        assert tuple(shipped.weights) in weight_grid(len(members), config["mixture"]["weight_step"])
    else:
        recipe = build_model(config["model_type"], config["model"]).config
        assert replace(recipe, dropout=shipped.dropout) == shipped
    assert f"configs/{folder.name}.json" in (folder / "README.md").read_text()


RECIPES = sorted((ROOT.parent / "configs").glob("*.json"))


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.stem)
def test_every_recipe_builds_and_its_init_from_fits(path):
    """Every recipe in configs/ passes the checks train.py runs and builds its model; a recipe that
    fine-tunes a shipped model (train.init_from) names one whose architecture it keeps, as train.py
    requires (dropout may differ and a position_grid may be added)."""
    config = load_recipe_config(path)
    assert config["name"] == path.stem
    if "mixture" in config:  # it combines shipped models
        assert all(load_pretrained(ROOT.parent / m).data_config["task"] == config["task"] for m in config["mixture"]["members"])
        return
    model = build_model(config["model_type"], config["model"])
    start = config["train"].get("init_from")
    if start:
        assert can_start_from(load_pretrained(ROOT.parent / start).config, model.config)
