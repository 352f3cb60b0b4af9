"""train.py trains, evaluates and exports a family it has never heard of, through the model interface
alone: a tiny stand-in whose `log_probs` is its only method, registered for these tests only. And a
recipe naming an unknown family, or a key its family lacks, is refused with the valid choices."""

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import train
from engine.checkpoint import load_pretrained
from engine.models import MODEL_REGISTRY
from engine.models.base import AutoregressiveModel
from engine.recipes import get_recipe_class, load_recipe_config
from test_mnist_recipe import write_fixture

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class MarkovConfig:
    quantization_levels: int = 2
    cond_channels: int = 0
    length: int = 784


class FirstOrderMarkov(AutoregressiveModel):
    """p(x_t | x_{t-1}, t, y): a learned table per position, causal by construction. It implements
    `log_probs` and nothing else (no fast state, no soft inputs)."""

    family_name = "First-order Markov stand-in"
    family_summary = "a table per pixel of p(x_t | x_{t-1}); a test family"

    def __init__(self, config: MarkovConfig):
        super().__init__()
        self.config = config
        Q = config.quantization_levels
        self.previous = nn.Embedding(Q + 1, Q)  # row Q: nothing before x_0
        self.position = nn.Parameter(torch.zeros(config.length, Q))
        self.cond = nn.Linear(config.cond_channels, Q) if config.cond_channels else None

    @property
    def sequence_length(self) -> int:
        return self.config.length

    def log_probs(self, levels, cond=None):
        B, N = levels.shape
        before = torch.cat([torch.full_like(levels[:, :1], self.config.quantization_levels), levels[:, :-1]], dim=1)
        logits = self.previous(before.long()) + self.position[:N]
        if self.cond is not None:
            logits = logits + self.cond(cond)[:, None]
        return F.log_softmax(logits, dim=-1)


@pytest.fixture
def markov(monkeypatch):
    monkeypatch.setitem(MODEL_REGISTRY, "markov", (FirstOrderMarkov, MarkovConfig))


def recipe_file(tmp_path, data, **model):
    smoke = json.loads((ROOT / "configs" / "smoke-mnist.json").read_text())
    recipe = {"name": "markov-mnist", "task": "mnist", "model_type": "markov",
              "model": {"quantization_levels": 2, "cond_channels": 10, **model},
              "data": {**smoke["data"], "data_dir": str(data), "val_size": 10},
              "train": {**smoke["train"], "steps": 2, "eval_every": 1, "export_dir": str(tmp_path / "export")}}
    path = tmp_path / "markov-mnist.json"
    path.write_text(json.dumps(recipe))
    return path


def test_a_family_with_only_log_probs_trains_evaluates_and_exports(tmp_path, markov, capsys):
    data = write_fixture(tmp_path / "data")
    path = recipe_file(tmp_path, data)
    args = ["--config", str(path), "--runs", str(tmp_path / "runs"), "--fresh"]
    assert train.main(args + ["--train.class_weight=0.5", "--train.class_images=2"]) == 0
    records = [json.loads(line) for line in (tmp_path / "runs" / "markov-mnist" / "metrics.jsonl").read_text().splitlines()]
    losses = [r for r in records if "loss" in r]
    assert len(losses) == 2 and all(r["loss_teacher_forced"] > 0 and r["loss_classification"] >= 0 for r in losses)
    assert any("val" in r for r in records) and any("test" in r for r in records)
    folder = tmp_path / "export" / "markov-mnist"
    model = load_pretrained(folder)
    assert isinstance(model, FirstOrderMarkov)
    assert json.loads((folder / "config.json").read_text())["model_type"] == "markov"
    assert set(model.metrics) >= {"pixel_accuracy", "nll_nats_per_image", "bits_per_dim", "bayes_accuracy"}
    card = (folder / "README.md").read_text()
    assert "First-order Markov stand-in" in card and "WaveNet" not in card and 'model_type="markov"' in card
    # the exported test NLL is what the model's own log_probs give on those images
    levels, labels = get_recipe_class("mnist")(load_recipe_config(path)["data"], model.config).split("test")
    ll = model.log_probs(levels.long(), F.one_hot(labels, 10).float()).gather(-1, levels.long()[..., None])
    assert model.metrics["nll_nats_per_image"] == pytest.approx(-ll.sum().item() / len(labels), rel=1e-5)
    assert train.main(args + ["--export-only"]) == 0  # re-exports from the run's checkpoint
    assert load_pretrained(folder).metrics == model.metrics
    capsys.readouterr()
    # the n-step loss feeds back soft samples: a family without soft inputs is refused clearly
    assert train.main(args + ["--train.unroll_weight=1.0"]) == 2
    assert "soft inputs" in capsys.readouterr().err


def test_recipes_name_their_family_and_its_keys(tmp_path, markov):
    data = write_fixture(tmp_path / "data")
    config = load_recipe_config(recipe_file(tmp_path, data))
    assert config["model_type"] == "markov"
    with pytest.raises(ValueError, match=r"Unknown model_type 'pixelsnake'; valid model types: \[.*'markov'.*'wavenet'.*\]"):
        load_recipe_config(recipe_file(tmp_path, data), ["--model_type=pixelsnake"])
    with pytest.raises(ValueError, match=r"model.dilations.*for model_type 'markov': cond_channels, length, quantization_levels"):
        load_recipe_config(recipe_file(tmp_path, data, dilations=[1, 2]))
    # a recipe without model_type is a WaveNet recipe, as every recipe written before families had names
    smoke = load_recipe_config(ROOT / "configs" / "smoke-mnist.json")
    assert smoke["model_type"] == "wavenet"
    with pytest.raises(ValueError, match="for model_type 'wavenet'.*dilations"):
        load_recipe_config(ROOT / "configs" / "smoke-mnist.json", ["--model.length=3"])
