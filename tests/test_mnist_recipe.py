"""The MNIST training recipe: batches with the start token, data_config that the image tasks read,
metrics that agree with the tasks, the shipped configs, and a tiny train.py run that exports a
loadable model, all on idx fixtures written here."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import train
from engine.checkpoint import load_pretrained
from engine.data import mnist
from engine.data.mnist import FILES, MNISTNotFoundError, write_idx
from engine.image_tasks import class_posterior, pixel_log_likelihoods, score_levels
from engine.models.wavenet import WaveNet, WaveNetConfig
from engine.recipes import get_recipe_class, load_recipe_config
from engine.recipes.mnist import MNISTData, MNISTRecipe

ROOT = Path(__file__).resolve().parents[1]


def write_fixture(root, n_train=40, n_test=12, seed=0):
    """Blob 'digits' whose labels are (weakly) visible; torchvision layout, gzipped."""
    rng = np.random.default_rng(seed)
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for split, n in (("train", n_train), ("test", n_test)):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        images = np.zeros((n, 28, 28), dtype=np.uint8)
        for i, y in enumerate(labels):
            images[i, 4 + y: 14 + y, 6:20] = rng.integers(100, 256, (10, 14))
        write_idx(raw / (FILES[split][0] + ".gz"), images)
        write_idx(raw / (FILES[split][1] + ".gz"), labels)
    return root


def tiny_config(Q=2, K=10):
    return WaveNetConfig(quantization_levels=Q, residual_channels=8, skip_channels=16, head_channels=16,
                         dilations=[1, 2, 4, 8], kernel_size=2, input_kernel_size=3, cond_channels=K)


def test_batches_carry_the_pixels_and_the_digit_and_wavenet_reads_its_start_token_first(tmp_path):
    write_fixture(tmp_path)
    recipe = MNISTRecipe({"data_dir": str(tmp_path), "val_size": 10}, tiny_config(Q=2))
    seq, cond = recipe.batch(0, 0, 6, torch.Generator().manual_seed(0))
    assert seq.shape == (6, 784) and seq.dtype == torch.long
    assert set(seq.unique().tolist()) <= {0, 1}
    inputs = WaveNet(tiny_config(Q=2)).input_sequence(seq)  # the start token belongs to the model
    assert inputs.shape == (6, 785) and (inputs[:, 0] == 0).all() and torch.equal(inputs[:, 1:], seq)
    levels, labels = recipe.split("train")
    assert levels.shape == (30, 784)
    rows = [next(i for i in range(30) if torch.equal(levels[i].long(), s)) for s in seq]
    assert torch.equal(cond, F.one_hot(labels[rows], 10).float())
    again, _ = recipe.batch(0, 0, 6, torch.Generator().manual_seed(0))
    assert torch.equal(seq, again)
    q256 = MNISTRecipe({"data_dir": str(tmp_path), "val_size": 10, "limit_train": 7}, tiny_config(Q=256, K=0))
    seq, cond = q256.batch(0, 0, 4, torch.Generator().manual_seed(0))
    assert cond is None and q256.split("train")[0].shape == (7, 784) and seq.max() > 1


def test_data_config_drives_the_image_tasks(tmp_path):
    recipe = MNISTRecipe({}, tiny_config(Q=2))
    dc = recipe.data_config()
    assert dc["task"] == "mnist" and dc["scan_order"] == "raster" and dc["start_value"] == 0
    assert dc["quantization"]["levels"] == 2 and "127" in dc["quantization"]["rule"]
    assert (dc["height"], dc["width"]) == (28, 28)
    assert dc["conditions"] == [f"digit {k}" for k in range(10)]
    assert json.loads(json.dumps(dc)) == dc
    assert "Q=256" in MNISTRecipe({}, tiny_config(Q=256)).data_config()["quantization"]["rule"]
    assert MNISTRecipe({}, tiny_config(K=0)).data_config()["conditions"] == []
    text = recipe.card_data_text()
    assert "LeCun" in text and "CC BY-SA 3.0" in text and "55,000" in text


def test_evaluate_agrees_with_the_image_tasks(tmp_path):
    write_fixture(tmp_path)
    recipe = MNISTRecipe({"data_dir": str(tmp_path), "val_size": 10, "eval_val_images": 6, "eval_batch_images": 4}, tiny_config())
    torch.manual_seed(0)
    model = WaveNet(tiny_config()).eval()
    model.data_config = recipe.data_config()
    metrics = recipe.evaluate(model, "val", "cpu")
    images, labels = mnist.load_split(tmp_path, "val", val_size=10, download=False)
    images, labels = images[:6], labels[:6]
    ll = pixel_log_likelihoods(model, images)  # (6, 10, 784)
    true_ll = ll[torch.arange(6), labels]
    assert metrics["nll_nats_per_image"] == pytest.approx(-true_ll.sum(1).mean().item(), rel=1e-5)
    assert metrics["bits_per_dim"] == pytest.approx(metrics["nll_nats_per_image"] / (784 * np.log(2)), rel=1e-6)
    posterior = class_posterior(model, images)
    assert metrics["bayes_accuracy"] == pytest.approx((posterior.argmax(1) == labels).float().mean().item())
    x = recipe.split("val")[0].long()
    _, pred = score_levels(model, x)
    assert metrics["pixel_accuracy"] == pytest.approx((pred[torch.arange(6), labels] == x).float().mean().item())
    half = ll[:, :, :392].sum(-1).argmax(1)
    assert metrics["bayes_accuracy_after_50pct"] == pytest.approx((half == labels).float().mean().item())
    assert set(metrics) == {"pixel_accuracy", "nll_nats_per_image", "bits_per_dim", "bayes_accuracy",
                            "bayes_accuracy_after_25pct", "bayes_accuracy_after_50pct", "bayes_accuracy_after_75pct"}
    assert recipe.split("test")[0].shape == (12, 784)  # eval_test_images 0 = the whole test split


def test_bad_data_options_and_missing_data(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="cond_channels"):
        MNISTRecipe({}, tiny_config(K=5))
    with pytest.raises(ValueError, match="threshold"):
        MNISTRecipe({"threshold": 255}, tiny_config())
    monkeypatch.setattr(mnist, "_try_download", lambda d: None)  # no network in tests
    recipe = MNISTRecipe({"data_dir": str(tmp_path / "missing")}, tiny_config())
    with pytest.raises(MNISTNotFoundError, match="MNIST/raw"):
        recipe.batch(0, 0, 2, torch.Generator())


@pytest.mark.parametrize("name,Q", [("wavenet-mnist-q2", 2), ("wavenet-mnist-q256", 256)])
def test_shipped_configs(name, Q):
    config = load_recipe_config(ROOT / "configs" / f"{name}.json")
    assert config["name"] == name and config["task"] == "mnist"
    model_config = WaveNetConfig(**config["model"])
    assert model_config.receptive_field == 704 and len(model_config.dilations) == 22
    assert model_config.quantization_levels == Q and model_config.cond_channels == 10
    assert (model_config.skip_channels, model_config.head_channels) == (128, 128)
    assert "CPU" in config["notes"] and "1024" in config["notes"]  # the card says why skip/head are narrower
    assert get_recipe_class("mnist").data_class is MNISTData
    with pytest.raises(ValueError, match="data.limit"):
        load_recipe_config(ROOT / "configs" / f"{name}.json", ["--data.limit=3"])


def test_smoke_training_run_exports_a_loadable_model(tmp_path, capsys):
    data = write_fixture(tmp_path / "data")
    export = tmp_path / "export"
    code = train.main(["--config", str(ROOT / "configs" / "smoke-mnist.json"), "--runs", str(tmp_path / "runs"), "--fresh",
                       f"--data.data_dir={data}", "--data.val_size=10", f"--train.export_dir={export}"])
    assert code == 0
    model = load_pretrained(export / "smoke-mnist")
    assert model.data_config["task"] == "mnist" and model.data_config["quantization"]["levels"] == 2
    assert set(model.metrics) >= {"pixel_accuracy", "nll_nats_per_image", "bits_per_dim", "bayes_accuracy"}
    images, _ = mnist.load_split(data, "test", val_size=10, download=False)
    posterior = class_posterior(model, images[:3])
    torch.testing.assert_close(posterior.sum(1), torch.ones(3))
    assert "MNIST" in (export / "smoke-mnist" / "README.md").read_text()
    # the benchmark runs on it and writes its JSON
    spec = importlib.util.spec_from_file_location("bench_mnist", ROOT / "bench" / "mnist.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "mnist.json"
    assert bench.main(["--models", str(export / "smoke-mnist"), "--data-dir", str(data), "--limit", "5", "--out", str(out)]) == 0
    twin = tmp_path / "other" / "smoke-mnist"
    twin.parent.mkdir()
    (twin).symlink_to(export / "smoke-mnist")
    assert bench.main(["--models", str(export / "smoke-mnist"), str(twin), "--data-dir", str(data), "--limit", "5", "--out",
                       str(tmp_path / "twins.json")]) == 2
    assert "share the name 'smoke-mnist'" in capsys.readouterr().err and not (tmp_path / "twins.json").exists()
    result = json.loads(out.read_text())["models"]["smoke-mnist"]
    assert result["metrics"]["bayes_accuracy"] >= 0 and result["latency"]["sample_10_digits_s"] > 0
    assert result["quantization"]["levels"] == 2
    meta = json.loads(out.read_text())["meta"]
    assert (meta["split"], meta["images"], meta["device"]) == ("test", 5, "cpu") and meta["cpu"]
    # validation images instead of the test set, for choosing between candidates
    bench.ROOT = tmp_path  # where the default --out lies: mnist-val.json, never the test figures' mnist.json
    assert bench.main(["--models", str(export / "smoke-mnist"), "--data-dir", str(data), "--split", "val", "--val-size", "10"]) == 0
    val_out = tmp_path / "bench" / "results" / "mnist-val.json"
    assert not (tmp_path / "bench" / "results" / "mnist.json").exists()
    val = json.loads(val_out.read_text())
    assert (val["meta"]["split"], val["meta"]["images"]) == ("val", 10)
    assert val["models"]["smoke-mnist"]["metrics"] != result["metrics"]
    if not torch.cuda.is_available():  # asking for a GPU that is not there is refused with a message, not a traceback
        assert bench.main(["--models", str(export / "smoke-mnist"), "--data-dir", str(data), "--device", "cuda",
                           "--out", str(tmp_path / "cuda.json")]) == 2
        assert "no CUDA GPU" in capsys.readouterr().err and not (tmp_path / "cuda.json").exists()


def test_smoke_run_with_the_classification_loss_logs_it_and_refuses_it_where_it_cannot_apply(tmp_path, capsys):
    data = write_fixture(tmp_path / "data")
    args = ["--config", str(ROOT / "configs" / "smoke-mnist.json"), "--runs", str(tmp_path / "runs"), "--fresh",
            f"--data.data_dir={data}", "--data.val_size=10", f"--train.export_dir={tmp_path / 'export'}"]
    assert train.main(args + ["--train.class_weight=0.5", "--train.class_images=2"]) == 0
    records = [json.loads(l) for l in (tmp_path / "runs" / "smoke-mnist" / "metrics.jsonl").read_text().splitlines()]
    cls = [r["loss_classification"] for r in records if "loss_classification" in r]
    assert len(cls) == 4 and all(v >= 0 for v in cls)
    assert all(abs(r["loss"] - r["loss_teacher_forced"] - 0.5 * r["loss_classification"]) < 1e-5
               for r in records if "loss_classification" in r)
    assert "class_weight=0.5" in (tmp_path / "export" / "smoke-mnist" / "README.md").read_text()
    capsys.readouterr()
    assert train.main(args + ["--train.class_weight=0.5", "--train.class_images=9"]) == 2
    assert "train.class_images must lie in 1..train.batch_size (4)" in capsys.readouterr().err
    assert train.main(args + ["--train.class_weight=0.5", "--model.cond_channels=0"]) == 2
    assert "class-conditional" in capsys.readouterr().err
    assert train.main(args + ["--train.class_weight=0.5", "--train.class_temperature=0"]) == 2
    assert "train.class_temperature must be > 0" in capsys.readouterr().err
