"""bench/compare.py on two tiny stand-ins and a fake MNIST: it measures quality itself (the NLL under the
true label equals evaluate_mnist's), keys each entry by the weights' sha256 and measures again only new
or changed models (or all with --force), and refuses --device cuda without a GPU. The CPU latencies
(bench/mnist.py's cpu_latency, run by test_mnist_recipe) are replaced by a recorder here."""

import json

import pytest
import torch

from bench import compare
from engine.checkpoint import load_pretrained, save_pretrained
from engine.data import mnist
from engine.recipes.mnist import evaluate_mnist, to_sequences
from test_app_compare import stand_in_name, write_family_models
from test_mnist_recipe import write_fixture


@pytest.fixture
def setup(tmp_path, monkeypatch):
    data = write_fixture(tmp_path / "data")
    root = write_family_models(tmp_path / "pretrained", families=("made", "wavenet"))
    measured = []

    def latency(model):
        measured.append(model.family_name)
        return {"sample_10_digits_s": 1.5, "class_posterior_by_prefix_1_image_s": 0.1, "complete_bottom_half_n4_p32_s": 2.0}

    monkeypatch.setattr(compare, "cpu_latency", latency)
    return data, root, measured, tmp_path / "compare.json"


def run(data, root, out, *extra):
    return compare.main(["--data-dir", str(data), "--models", str(root / stand_in_name("made")), str(root / stand_in_name("wavenet")),
                         "--limit", "5", "--bayes-limit", "3", "--out", str(out), *extra])


def test_measures_once_then_only_what_changed(setup, capsys):
    data, root, measured, out = setup
    assert run(data, root, out) == 0
    assert sorted(measured) == ["MADE", "WaveNet"]
    results = json.loads(out.read_text())["models"]
    made = results[stand_in_name("made")]
    assert made["sha256"] == compare.weights_sha256(root / stand_in_name("made")) and made["family"] == "MADE"
    cpu = made["cpu"]
    assert cpu["test"]["images"] == 5 and cpu["bayes"]["images"] == 3 and 0 <= cpu["bayes"]["accuracy"] <= 1
    assert cpu["settings"] == {"test_images": 5, "bayes_images": 3, "threads": 1} and cpu["measured_with"]["cpu"]
    # the NLL is this script's measurement: evaluate_mnist's (every class scored) on the same digits
    images, labels = mnist.load_split(data, "test", download=False)
    model = load_pretrained(root / stand_in_name("made"))
    reference = evaluate_mnist(model, to_sequences(images[:5], 2, 127), labels[:5])
    assert cpu["test"]["nll_nats_per_image"] == pytest.approx(reference["nll_nats_per_image"], rel=1e-5)
    assert cpu["test"]["bits_per_dim"] == pytest.approx(reference["bits_per_dim"], rel=1e-5)
    assert "not measured" not in capsys.readouterr().out

    measured.clear()
    assert run(data, root, out) == 0  # nothing changed: nothing measured, the file keeps its figures
    assert measured == [] and json.loads(out.read_text())["models"] == results
    assert "unchanged" in capsys.readouterr().err

    torch.manual_seed(3)
    changed = load_pretrained(root / stand_in_name("wavenet"))
    with torch.no_grad():
        next(changed.parameters()).add_(0.5)
    save_pretrained(changed, root / stand_in_name("wavenet"), data=changed.data_config)
    assert run(data, root, out) == 0
    assert measured == ["WaveNet"]  # only the changed weights
    again = json.loads(out.read_text())["models"]
    assert again[stand_in_name("made")] == results[stand_in_name("made")]
    assert again[stand_in_name("wavenet")]["sha256"] != results[stand_in_name("wavenet")]["sha256"]

    measured.clear()
    assert run(data, root, out, "--force") == 0
    assert sorted(measured) == ["MADE", "WaveNet"]
    measured.clear()
    assert run(data, root, out, "--bayes-limit", "4") == 0  # other settings: measured again
    assert sorted(measured) == ["MADE", "WaveNet"]


def test_refuses_a_gpu_that_is_not_there_and_bad_limits(setup, capsys):
    data, root, measured, out = setup
    if not torch.cuda.is_available():
        assert run(data, root, out, "--device", "cuda") == 2
        assert "no CUDA GPU" in capsys.readouterr().err
    assert run(data, root, out, "--limit", "-1") == 2
    assert measured == [] and not out.exists()


def test_bench_mnist_merges_its_results_per_model(tmp_path):
    """bench/mnist.py's output keeps the other models' entries; the models of a run carry its meta."""
    from bench.mnist import merge_results

    out = tmp_path / "mnist.json"
    first = merge_results(out, {"run": 1}, {"a": {"latency": {"x": 1.0}}, "b": {"latency": {"x": 2.0}}})
    assert first == {"meta": {"run": 1}, "models": {"a": {"latency": {"x": 1.0}, "measured_with": {"run": 1}},
                                                      "b": {"latency": {"x": 2.0}, "measured_with": {"run": 1}}}}
    out.write_text(json.dumps(first))
    second = merge_results(out, {"run": 2}, {"b": {"latency": {"x": 3.0}}, "c": {"latency": {"x": 4.0}}})
    assert second["models"]["a"] == first["models"]["a"]  # untouched
    assert second["models"]["b"] == {"latency": {"x": 3.0}, "measured_with": {"run": 2}}
    assert second["models"]["c"]["measured_with"] == {"run": 2}
    assert second["meta"] == {"run": 1}  # it still describes a's entry; b and c carry their own
    out.write_text(json.dumps(second))
    assert merge_results(out, {"run": 3}, {m: {} for m in "abc"})["meta"] == {"run": 3}  # every entry replaced


def test_the_gpu_timing_samples_a_thousand_digits_in_calls_the_engine_allows(setup, monkeypatch):
    """`gpu_sample_seconds(model, per_digit=100)` samples 100 of each digit in calls of at most the
    engine's MAX_IMAGES (10 calls of 10 per digit), on whatever device the model is on (here the CPU)."""
    _, root, _, _ = setup
    model = load_pretrained(root / stand_in_name("wavenet"))
    calls = []
    monkeypatch.setattr(compare, "sample_images", lambda m, digits, n, generator=None: calls.append((tuple(digits), n)))
    assert compare.gpu_sample_seconds(model, per_digit=100, repeats=1) >= 0.0
    assert calls == [(tuple(range(10)), 10)] * 20  # a warm-up run, then the timed one
    assert sum(n * len(d) for d, n in calls[10:]) == 1000
