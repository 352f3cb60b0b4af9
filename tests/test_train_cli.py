"""train.py end to end on the tiny smoke recipe: export, resume, bad configs, damaged checkpoints."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import train
from engine import load_pretrained

ROOT = Path(__file__).resolve().parents[1]
SMOKE = str(ROOT / "configs" / "smoke-fourier.json")


def run(tmp_path, *extra):
    return train.main(["--config", SMOKE, f"--runs={tmp_path / 'runs'}", f"--train.export_dir={tmp_path / 'export'}", *extra])


def test_tiny_run_exports_a_loadable_model(tmp_path):
    assert run(tmp_path) == 0
    model = load_pretrained(tmp_path / "export" / "smoke-fourier")
    assert model.data_config["task"] == "fourier" and model.data_config["periods"] == [5.0, 6.0, 7.0, 8.0, 9.0]
    assert "teacher_forced_accuracy" in model.metrics
    card = (tmp_path / "export" / "smoke-fourier" / "README.md").read_text()
    assert "python train.py --config" in card and "teacher_forced_accuracy" in card
    lines = [json.loads(l) for l in (tmp_path / "runs" / "smoke-fourier" / "metrics.jsonl").read_text().splitlines()]
    assert any("val" in l for l in lines) and any("test" in l for l in lines)


def test_resume_continues_from_the_checkpoint(tmp_path, capsys):
    assert run(tmp_path, "--train.steps=4") == 0
    ckpt = torch.load(tmp_path / "runs" / "smoke-fourier" / "checkpoint.pt", weights_only=True)
    assert ckpt["step"] == 4
    assert run(tmp_path, "--train.steps=6") == 0
    assert "resuming smoke-fourier from step 4" in capsys.readouterr().err
    assert torch.load(tmp_path / "runs" / "smoke-fourier" / "checkpoint.pt", weights_only=True)["step"] == 6


def test_a_checkpoint_from_before_learning_rate_scales_resumes(tmp_path, capsys):
    """Checkpoints written before param groups carried an lr_scale (for position_grid tables) still resume."""
    assert run(tmp_path, "--train.steps=4") == 0
    path = tmp_path / "runs" / "smoke-fourier" / "checkpoint.pt"
    ckpt = torch.load(path, weights_only=True)
    for group in ckpt["optimizer"]["param_groups"]:
        del group["lr_scale"]
    torch.save(ckpt, path)
    assert run(tmp_path, "--train.steps=6") == 0
    assert "resuming smoke-fourier from step 4" in capsys.readouterr().err
    assert torch.load(path, weights_only=True)["step"] == 6


@pytest.mark.parametrize("override,message", [
    ("--train.lrr=0.1", "Unknown config key(s) train.lrr"),
    ("--model.channels=3", "Unknown config key(s) model.channels"),
    ("--train.steps=ten", "train.steps must be a int"),
    ("--train.lr=[1]", "train.lr must be a float"),
    ("--data.periodz=3", "data.periodz"),
    ("bogus", "must look like"),
    ("--train.ema_decay=1.0", "train.ema_decay must lie in [0, 1)"),
])
def test_bad_config_values_are_clear_errors(tmp_path, capsys, override, message):
    assert run(tmp_path, override) == 2
    assert message in capsys.readouterr().err


def test_missing_config_file(tmp_path, capsys):
    assert train.main(["--config", str(tmp_path / "nope.json")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_damaged_or_pickled_checkpoint_is_refused(tmp_path):
    ckpt = tmp_path / "runs" / "smoke-fourier" / "checkpoint.pt"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(SystemExit, match="cannot be read as a training checkpoint"):
        run(tmp_path)

    class Boom:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'PWNED'}",))

    torch.save({"step": Boom()}, ckpt)  # a real pickle with a payload
    with pytest.raises(SystemExit, match="cannot be read"):
        run(tmp_path)
    assert not (tmp_path / "PWNED").exists()


def test_sigkill_mid_run_then_restart_resumes_and_finishes(tmp_path):
    """A slowed-down run is killed with SIGKILL after its first checkpoint; the restart resumes."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    args = [sys.executable, str(ROOT / "train.py"), "--config", SMOKE, f"--runs={tmp_path / 'runs'}",
            f"--train.export_dir={tmp_path / 'export'}", "--train.steps=400", "--train.checkpoint_every=5",
            "--train.eval_every=1000", "--train.log_every=1"]
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpt = tmp_path / "runs" / "smoke-fourier" / "checkpoint.pt"
    deadline = time.time() + 120
    while time.time() < deadline and not (ckpt.exists() and torch.load(ckpt, weights_only=True)["step"] >= 10):
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    step = torch.load(ckpt, weights_only=True)["step"]
    assert 10 <= step < 400
    out = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert f"resuming smoke-fourier from step {step}" in out.stderr
    load_pretrained(tmp_path / "export" / "smoke-fourier")


def test_kill_during_checkpoint_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    """The write goes to a temporary file that is renamed only when complete."""
    assert run(tmp_path, "--train.steps=2") == 0
    ckpt = tmp_path / "runs" / "smoke-fourier" / "checkpoint.pt"
    before = ckpt.read_bytes()
    real_save = torch.save

    def dying_save(obj, f, *a, **k):
        real_save(obj, f, *a, **k)
        Path(f).write_bytes(Path(f).read_bytes()[:100])  # the process "dies" with half a file written
        raise KeyboardInterrupt("killed mid-write")

    monkeypatch.setattr(train.torch, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, "--train.steps=4")
    assert ckpt.read_bytes() == before
    assert torch.load(ckpt, weights_only=True)["step"] == 2
    monkeypatch.setattr(train.torch, "save", real_save)
    assert run(tmp_path, "--train.steps=4") == 0  # and a restart carries on from it


def test_data_parallel_under_torchrun_with_gloo(tmp_path):
    """Two CPU processes (gloo): gradients are averaged, rank 0 alone writes checkpoint and export."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    args = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(ROOT / "train.py"),
            "--config", SMOKE, f"--runs={tmp_path / 'runs'}", f"--train.export_dir={tmp_path / 'export'}", "--train.steps=3"]
    out = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert torch.load(tmp_path / "runs" / "smoke-fourier" / "checkpoint.pt", weights_only=True)["step"] == 3
    load_pretrained(tmp_path / "export" / "smoke-fourier")


def test_export_only_rebuilds_the_model_folder_from_the_finished_run(tmp_path):
    assert run(tmp_path) == 0
    folder = tmp_path / "export" / "smoke-fourier"
    before = load_pretrained(folder).metrics
    (folder / "README.md").unlink()
    (folder / "model.safetensors").unlink()
    assert run(tmp_path, "--export-only") == 0
    assert load_pretrained(folder).metrics == before
    assert "python train.py --config" in (folder / "README.md").read_text()


def test_export_only_may_change_evaluation_sizes_but_not_training_data(tmp_path, capsys):
    assert run(tmp_path) == 0
    assert run(tmp_path, "--export-only", "--data.test_curves=4") == 0  # evaluated anew on 4 test curves
    with pytest.raises(SystemExit, match="different model/data config"):
        run(tmp_path, "--export-only", "--data.num_curves=16")


def test_time_budget_shortens_the_run_and_the_card_names_the_steps_it_ran(tmp_path):
    """A budget too small for the recipe's steps: the run stops early, on a finished schedule, and the
    exported config and card say how many steps it ran (the command reproduces it without the budget)."""
    assert run(tmp_path, "--train.steps=100000", "--time-budget=0.01") == 0
    ckpt = torch.load(tmp_path / "runs" / "smoke-fourier" / "checkpoint.pt", weights_only=True)
    assert 41 <= ckpt["step"] < 100000
    saved = json.loads(ckpt["config"])
    assert saved["train"]["steps"] == ckpt["step"]
    card = (tmp_path / "export" / "smoke-fourier" / "README.md").read_text()
    assert f"--train.steps={ckpt['step']}" in card and "--train.steps=100000" not in card and "--time-budget" not in card


def test_init_from_starts_a_fresh_run_from_exported_weights_and_refuses_a_mismatch(tmp_path, capsys):
    assert run(tmp_path) == 0
    source = tmp_path / "export" / "smoke-fourier"
    start = load_pretrained(source).state_dict()
    assert run(tmp_path, "--name=tuned", f"--train.init_from={source}", "--train.steps=1", "--train.lr=0.0") == 0
    tuned = load_pretrained(tmp_path / "export" / "tuned").state_dict()
    assert all(torch.equal(start[k], tuned[k]) for k in start)  # lr 0: the weights it started from, unchanged
    assert run(tmp_path, "--name=dropped", "--model.dropout=0.2", f"--train.init_from={source}", "--train.steps=1", "--train.lr=0.0") == 0
    dropped = tmp_path / "export" / "dropped"
    assert all(torch.equal(start[k], v) for k, v in load_pretrained(dropped).state_dict().items())  # dropout has no weights
    assert load_pretrained(dropped).config.dropout == 0.2 and "applied in training only" in (dropped / "README.md").read_text()
    assert run(tmp_path, "--name=wider", "--model.residual_channels=12", f"--train.init_from={source}") == 2
    assert "different model config" in capsys.readouterr().err
    # a start without positions may gain a position_grid: its tables start at zero, the rest is the start's
    assert run(tmp_path, "--name=placed", "--model.position_grid=[3,7]", f"--train.init_from={source}", "--train.steps=1",
               "--train.lr=0.0") == 0
    placed = load_pretrained(tmp_path / "export" / "placed")
    assert placed.config.position_grid == [3, 7]
    assert all(torch.equal(start[k], v) for k, v in placed.state_dict().items() if not k.startswith("position."))
    assert all(not t.any() for t in placed.position)
    # but a grid, once trained, is part of the architecture: starting from it with another grid is refused
    assert run(tmp_path, "--name=moved", "--model.position_grid=[7,3]", f"--train.init_from={tmp_path / 'export' / 'placed'}") == 2
    assert "different model config" in capsys.readouterr().err
    assert run(tmp_path, "--name=nowhere", f"--train.init_from={tmp_path / 'missing'}") == 2
    assert "train.init_from" in capsys.readouterr().err


def test_time_budget_is_refused_under_torchrun(tmp_path, capsys, monkeypatch):
    """Ranks timing themselves could pick different step counts and hang each other: a clear refusal."""
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert run(tmp_path, "--time-budget=60") == 2
    assert "--time-budget is not supported under torchrun" in capsys.readouterr().err


def test_fourier_benchmark_reproduces_exported_metrics_and_splits_them_by_period(tmp_path):
    import importlib.util

    assert run(tmp_path) == 0
    folder = tmp_path / "export" / "smoke-fourier"
    spec = importlib.util.spec_from_file_location("bench_fourier", ROOT / "bench" / "fourier.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "fourier.json"
    assert bench.main(["--models", str(folder), "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    by = report["models"]["smoke-fourier"]
    assert report["meta"]["device"] == "cpu" and report["meta"]["cpu"]  # figures say which machine gave them
    model = load_pretrained(folder)
    # the test curves are rebuilt from config.json alone: the same figures train.py exported
    for key, value in model.metrics.items():
        assert by["all"][key] == pytest.approx(value, abs=1e-6), key
    periods = [name for name in by if name != "all"]
    assert periods == [f"period {p:g} s" for p in model.data_config["periods"] if f"period {p:g} s" in by]
    assert sum(by[p]["curves"] for p in periods) == by["all"]["curves"]
    # curves have equal length, so the overall teacher-forced accuracy is the curve-weighted mean
    weighted = sum(by[p]["curves"] * by[p]["teacher_forced_accuracy"] for p in periods) / by["all"]["curves"]
    assert weighted == pytest.approx(by["all"]["teacher_forced_accuracy"], abs=1e-9)


def test_weight_average_is_what_gets_exported_and_survives_a_resume(tmp_path):
    """With train.ema_decay the checkpoint carries the running average next to the raw weights; a resumed
    run continues the same average; the export (and --export-only) ships the average, and the card says so."""
    from safetensors.torch import load_file

    assert run(tmp_path, "--train.ema_decay=0.9", "--train.steps=4") == 0
    path = tmp_path / "runs" / "smoke-fourier" / "checkpoint.pt"
    assert torch.load(path, weights_only=True)["weight_average"]["updates"] == 4
    assert run(tmp_path, "--train.ema_decay=0.9", "--train.steps=6") == 0
    ckpt = torch.load(path, weights_only=True)
    assert ckpt["step"] == 6 and ckpt["weight_average"]["updates"] == 6
    folder = tmp_path / "export" / "smoke-fourier"
    exported = load_file(folder / "model.safetensors")
    names = list(ckpt["model"])
    assert len(names) == len(ckpt["weight_average"]["params"])
    for name, avg in zip(names, ckpt["weight_average"]["params"]):
        assert torch.equal(exported[name], avg)
    assert any(not torch.equal(ckpt["model"][n], exported[n]) for n in names)  # the average, not the last step
    assert "exponential moving average of the training weights, decay 0.9" in (folder / "README.md").read_text()
    (folder / "model.safetensors").unlink()
    assert run(tmp_path, "--train.ema_decay=0.9", "--train.steps=6", "--export-only") == 0
    again = load_file(folder / "model.safetensors")
    assert all(torch.equal(again[n], exported[n]) for n in names)
