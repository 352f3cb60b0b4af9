"""A mixture of WaveNets: its conditionals are the weighted mean of its members' probabilities, its fast
generation equals its naive generation, it saves and loads as one folder, the image tasks accept it,
and train.py fits its weights on validation images from a mixture recipe."""

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import engine.models.wavenet_fast as wavenet_fast
import train
from engine.checkpoint import load_pretrained, save_pretrained
from engine.encoding import one_hot
from engine.generation import generate_fast, generate_naive
from engine.image_tasks import class_posterior, class_posterior_by_prefix, complete, sample_images
from engine.models import build_model
from engine.models.mixture import Mixture
from engine.models.wavenet import WaveNet, WaveNetConfig
from engine.recipes import load_recipe_config
from engine.recipes.mixture import best_weighting, mixture_of, score_weightings, weight_grid
from engine.sampling import greedy
from engine.tasks import forecast
from test_image_tasks import data_config, digits
from test_mnist_recipe import write_fixture


def member(Q=7, K=3, residual=8, dilations=(1, 2, 4, 8), seed=0, start=0):
    torch.manual_seed(seed)
    return WaveNet(WaveNetConfig(quantization_levels=Q, residual_channels=residual, skip_channels=16, head_channels=12,
                                 dilations=list(dilations), kernel_size=2, input_kernel_size=3, cond_channels=K,
                                 start_value=start)).eval()


def make(Q=7, K=3, weights=(0.7, 0.3)):
    """Two members that differ in width and receptive field."""
    return mixture_of([member(Q, K, 8, (1, 2, 4, 8), seed=0), member(Q, K, 6, (1, 2, 1, 2), seed=1)], weights)


def test_conditionals_are_the_weighted_mean_of_the_members_probabilities():
    model = make()
    levels = torch.randint(0, 7, (4, 20), generator=torch.Generator().manual_seed(0))
    cond = torch.eye(3)[[0, 1, 2, 0]]
    expected = sum(w * F.softmax(m.logits_from_levels(levels, cond), dim=-1) for w, m in zip((0.7, 0.3), model.members))
    logp = model.logits_from_levels(levels, cond)  # (B, T, Q)
    torch.testing.assert_close(logp.exp(), expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(model(one_hot(levels, 7), cond).transpose(1, 2), logp, rtol=1e-4, atol=1e-5)
    assert model.receptive_field == max(m.receptive_field for m in model.members) == model.members[0].receptive_field


@pytest.mark.parametrize("use_levels", [False, True])
@pytest.mark.parametrize("K", [0, 3])
def test_fast_generation_equals_naive_generation(K, use_levels, monkeypatch):
    if use_levels:  # members read levels through their embedding_bag input (Q=256 does so unforced)
        monkeypatch.setattr(wavenet_fast, "USE_LEVELS_MIN", 0)
    model = make(K=K)
    cond = torch.eye(3)[[2, 0]] if K else None
    for T0 in (1, 5, model.receptive_field + 3):
        prefix = torch.randint(0, 7, (2, T0), generator=torch.Generator().manual_seed(T0))
        fast = list(itertools.islice(generate_fast(model, prefix, greedy, cond), 30))
        naive = list(itertools.islice(generate_naive(model, prefix, greedy, cond), 30))
        torch.testing.assert_close(torch.stack([s.logits for s in fast]), torch.stack([s.logits for s in naive]), rtol=1e-4, atol=1e-5)
        assert torch.equal(torch.stack([s.sample for s in fast]), torch.stack([s.sample for s in naive]))


def test_reordering_a_mixture_state_equals_priming_the_reordered_rows():
    model = make()
    window = torch.randint(0, 7, (3, 12), generator=torch.Generator().manual_seed(2))
    cond = torch.eye(3)
    index = torch.tensor([2, 2, 0])
    a, b = model.start(window, cond), model.start(window[index], cond[index])
    a.reorder(index)
    torch.testing.assert_close(a.log_probs, b.log_probs, rtol=1e-5, atol=1e-6)
    for level in (1, 4, 6):
        levels = torch.full((3,), level)
        torch.testing.assert_close(a.step(levels), b.step(levels), rtol=1e-5, atol=1e-6)


def test_save_and_load_round_trip_as_one_folder(tmp_path):
    model = make(Q=4, K=10)
    save_pretrained(model, tmp_path / "mix", data=data_config(4, 10))
    config = json.loads((tmp_path / "mix" / "config.json").read_text())
    assert config["model_type"] == "mixture" and config["model"]["weights"] == [0.7, 0.3]
    assert [m["model_type"] for m in config["model"]["members"]] == ["wavenet", "wavenet"]
    loaded = load_pretrained(tmp_path / "mix")
    assert isinstance(loaded, Mixture)
    levels = torch.randint(0, 4, (2, 30), generator=torch.Generator().manual_seed(0))
    cond = torch.eye(10)[[3, 7]]
    torch.testing.assert_close(loaded.logits_from_levels(levels, cond), model.logits_from_levels(levels, cond))


@pytest.mark.parametrize("change,match", [
    (lambda c: c.update(weights=[0.5, 0.6]), "sum to 1"),
    (lambda c: c.update(weights=[1.0, 0.0]), "positive"),
    (lambda c: c.update(weights=[1.0]), "one per member"),
    (lambda c: c.update(members=c["members"][:1], weights=[1.0]), "at least two"),
    (lambda c: c["members"][1]["model"].update(quantization_levels=5), "agree on quantization_levels"),
    (lambda c: c["members"][1]["model"].update(depth=3), "Unknown WaveNetConfig keys"),
    (lambda c: c["members"][1].update(model_type="mixture"), "itself a mixture"),
    (lambda c: c["members"][1].update(model_type="pixelcnn"), "Unknown model type"),
    (lambda c: c.pop("weights"), "weights"),
])
def test_bad_mixture_configs_are_clear_errors(change, match):
    config = json.loads(json.dumps({"members": [{"model_type": "wavenet", "model": {"quantization_levels": 4}},
                                                {"model_type": "wavenet", "model": {"quantization_levels": 4}}],
                                    "weights": [0.5, 0.5]}))
    change(config)
    with pytest.raises(ValueError, match=match):
        build_model("mixture", config)


def test_image_tasks_accept_a_mixture():
    model = make(Q=2, K=10, weights=(0.5, 0.5))
    model.data_config = data_config(2, 10)
    images = digits(3)
    by_prefix = class_posterior_by_prefix(model, images)
    torch.testing.assert_close(by_prefix.sum(-1), torch.ones(3, 784))
    torch.testing.assert_close(by_prefix[:, -1], class_posterior(model, images), rtol=1e-4, atol=1e-5)
    a = sample_images(model, [1, 4], 2, generator=torch.Generator().manual_seed(5))
    b = sample_images(model, [1, 4], 2, generator=torch.Generator().manual_seed(5))
    assert a.shape == (4, 28, 28) and torch.equal(a, b)
    mask = torch.ones(28, 28, dtype=torch.bool)
    mask[10:18, 5:20] = False
    out = complete(model, images[0], mask, None, n=3, num_particles=8, generator=torch.Generator().manual_seed(1))
    known = torch.where(images[0] > 127, 255, 0).to(torch.uint8)
    assert torch.equal(out[:, mask], known[mask].expand(3, -1))


def test_weight_grid_and_scoring_pick_what_a_direct_computation_picks():
    assert weight_grid(2, 0.25) == [(0.25, 0.75), (0.5, 0.5), (0.75, 0.25)]
    assert all(abs(sum(w) - 1) < 1e-12 for w in weight_grid(3, 0.1)) and len(weight_grid(3, 0.1)) == 36
    models = [member(Q=4, K=10, seed=0, start=1), member(Q=4, K=10, residual=6, seed=1, start=1)]
    levels = torch.randint(0, 4, (6, 40), generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([0, 3, 9, 3, 1, 2])
    rows = score_weightings(models, levels, labels, weight_grid(2, 0.25), batch_images=4)
    for row in rows:  # the mixture model built with these weights scores the same
        mix = mixture_of(models, row["weights"])
        inputs = torch.cat([torch.ones(6, 1, dtype=torch.long), levels[:, :-1]], dim=1)
        logp = mix.logits_from_levels(inputs, F.one_hot(labels, 10).float())
        assert row["pixel_accuracy"] == pytest.approx((logp.argmax(-1) == levels).float().mean().item())
        assert row["nll_nats_per_image"] == pytest.approx(-logp.gather(-1, levels[..., None]).sum().item() / 6, rel=1e-5)
    best = best_weighting(rows)
    assert all(best["pixel_accuracy"] >= r["pixel_accuracy"] for r in rows)


def mixture_recipe(tmp_path, data, members, **extra):
    recipe = {"name": "mix", "task": "mnist", "notes": "test notes",
              "mixture": {"members": [str(m) for m in members], "weight_step": 0.25},
              "data": {"data_dir": str(data), "val_size": 10, "eval_val_images": 0, "eval_test_images": 6, "eval_batch_images": 4},
              "train": {"threads": 1, "export_dir": str(tmp_path / "export")}}
    recipe.update(extra)
    path = tmp_path / "mix.json"
    path.write_text(json.dumps(recipe))
    return path


def test_train_py_fits_a_mixture_recipe_and_exports_it(tmp_path, capsys):
    data = write_fixture(tmp_path / "data")
    members = []
    for i, residual in enumerate((8, 6)):
        save_pretrained(member(Q=2, K=10, residual=residual, seed=i), tmp_path / f"m{i}", data=data_config(2, 10))
        members.append(tmp_path / f"m{i}")
    # the members' data settings must be this recipe's: the fixture config lacks pixel_values, so it differs
    assert train.main(["--config", str(mixture_recipe(tmp_path, data, members))]) == 2
    assert "other data settings" in capsys.readouterr().err
    from engine.recipes.mnist import MNISTRecipe
    good = MNISTRecipe({"data_dir": str(data), "val_size": 10}, member(Q=2, K=10).config).data_config()
    for i, residual in enumerate((8, 6)):
        save_pretrained(member(Q=2, K=10, residual=residual, seed=i), tmp_path / f"m{i}", data=good)
    assert train.main(["--config", str(mixture_recipe(tmp_path, data, members))]) == 0
    result = json.loads(capsys.readouterr().out)
    model = load_pretrained(tmp_path / "export" / "mix")
    assert isinstance(model, Mixture) and model.config.weights == result["weights"]
    assert result["weights"] in [list(w) for w in weight_grid(2, 0.25)]
    assert model.metrics == result["test"] and 0 <= model.metrics["pixel_accuracy"] <= 1
    card = (tmp_path / "export" / "mix" / "README.md").read_text()
    assert "chosen" in card and "test notes" in card and str(members[0]) in card and "Metrics (test split, 6 images)" in card
    nested = mixture_recipe(tmp_path, data, [tmp_path / "export" / "mix", members[0]])
    assert train.main(["--config", str(nested)]) == 2 and "itself a mixture" in capsys.readouterr().err


def test_bad_mixture_recipes_are_clear_errors(tmp_path, capsys):
    data = write_fixture(tmp_path / "data")
    path = mixture_recipe(tmp_path, data, [tmp_path / "nothing", tmp_path / "nothing2"])
    assert train.main(["--config", str(path)]) == 2
    assert "config.json" in capsys.readouterr().err
    assert train.main(["--config", str(path), "--export-only"]) == 2
    assert "trains nothing" in capsys.readouterr().err
    with pytest.raises(ValueError, match="at least two"):
        load_recipe_config(mixture_recipe(tmp_path, data, [tmp_path / "a"]))
    with pytest.raises(ValueError, match="weight_step"):
        load_recipe_config(mixture_recipe(tmp_path, data, ["a", "b"]), ["--mixture.weight_step=0.3"])
    with pytest.raises(ValueError, match="exactly one of 'model'"):
        load_recipe_config(mixture_recipe(tmp_path, data, ["a", "b"], model={"quantization_levels": 2}))
    with pytest.raises(ValueError, match="mixture.X"):
        load_recipe_config(mixture_recipe(tmp_path, data, ["a", "b"]), ["--model.residual_channels=3"])
    with pytest.raises(ValueError, match="mixture.seed"):
        load_recipe_config(mixture_recipe(tmp_path, data, ["a", "b"]), ["--mixture.seed=3"])



def test_forecast_accepts_a_mixture_of_the_shipped_fourier_models():
    root = Path(__file__).resolve().parents[1] / "pretrained"
    a, b = load_pretrained(root / "wavenet-fourier"), load_pretrained(root / "wavenet-fourier-unrolled")
    model = mixture_of([a, b], [0.5, 0.5])
    model.data_config = a.data_config
    observed = np.sin(np.linspace(0, 6, 100))
    runs = [forecast(model, observed, 20, 3, condition=1, generator=torch.Generator().manual_seed(0)) for _ in range(2)]
    assert runs[0].shape == (3, 20) and np.isfinite(runs[0]).all() and np.array_equal(runs[0], runs[1])
