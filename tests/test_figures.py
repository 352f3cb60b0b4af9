"""The figures a reader sees are the figures measured: the cards' and the README's generated blocks agree
with config.json and bench/results/ (bench/figures.py), a block that drifts is caught, `bench/mnist.py
--latency-only` marks the quality figures it copies, and each shipped MNIST model's card figures agree with
a fresh evaluation on the 200 gallery digits (a sample of the same test set) within sampling error."""

import json
import math
import shutil
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from bench import figures
from engine.cards import block_markers, read_block, replace_block
from engine.checkpoint import list_pretrained, load_pretrained, read_config, save_pretrained
from engine.data.mnist import load_gallery
from engine.images import forward_rows, score_levels
from engine.recipes.mnist import to_sequences

ROOT = Path(__file__).resolve().parents[1]
MNIST_MODELS = sorted(name for name, err in list_pretrained(ROOT / "pretrained").items()
                      if err is None and read_config(ROOT / "pretrained" / name)["data"].get("task") == "mnist")


def test_cards_and_readme_agree_with_the_results_files():
    assert figures.disagreements() == []
    blocks = figures.expected()
    for name in MNIST_MODELS:  # every shipped MNIST card carries the block, with its latency and 783-pixel rows
        body = blocks[ROOT / "pretrained" / name / "README.md"]["mnist"]
        assert "pixels 1..783" in body and "ten digits sampled" in body, name
    assert all(f"`{name}`" in blocks[ROOT / "README.md"]["models"] for name in MNIST_MODELS)


def copy_tree(tmp_path: Path) -> Path:
    """README, docs, bench/results and pretrained/*/{config.json, README.md} copied; weights linked."""
    root = tmp_path / "repo"
    shutil.copytree(ROOT / "bench" / "results", root / "bench" / "results")
    shutil.copytree(ROOT / "docs", root / "docs")
    shutil.copy(ROOT / "README.md", root / "README.md")
    for d in (ROOT / "pretrained").iterdir():
        if d.is_dir():
            (root / "pretrained" / d.name).mkdir(parents=True)
            for f in ("config.json", "README.md"):
                shutil.copy(d / f, root / "pretrained" / d.name / f)
            (root / "pretrained" / d.name / "model.safetensors").symlink_to(d / "model.safetensors")
    return root


def test_a_card_or_readme_that_disagrees_with_the_results_is_caught(tmp_path):
    root = copy_tree(tmp_path)
    assert figures.disagreements(root) == []
    name = MNIST_MODELS[0]
    results = root / "bench" / "results" / "mnist.json"
    data = json.loads(results.read_text())
    data["models"][name]["latency"]["sample_10_digits_s"] += 0.05  # a re-measurement the card has not taken up
    results.write_text(json.dumps(data))
    problems = figures.disagreements(root)
    assert f"pretrained/{name}/README.md: the figures:mnist block differs from its sources" in problems
    assert "README.md: the figures:models block differs from its sources" in problems
    card = root / "pretrained" / name / "README.md"
    card.write_text(card.read_text().replace(block_markers("mnist")[0], ""))  # a card without its block
    assert f"pretrained/{name}/README.md: no figures:mnist block" in figures.disagreements(root)


def test_replace_block_keeps_the_text_around_it():
    begin, end = block_markers("x")
    text = f"before\n{begin}\nold\n{end}\nafter\n"
    new = replace_block(text, "x", "new\nlines")
    assert new == f"before\n{begin}\nnew\nlines\n{end}\nafter\n" and read_block(new, "x") == "new\nlines"
    with pytest.raises(ValueError, match="No figures:y block"):
        replace_block(text, "y", "z")


def test_latency_only_marks_the_quality_figures_as_copied(tmp_path, capsys):
    import importlib.util

    from tests.test_image_tasks import data_config, tiny

    model = tiny(Q=2, K=10)
    folder = save_pretrained(model, tmp_path / "tiny-mnist", data=data_config(2, 10), metrics={"pixel_accuracy": 0.5})
    spec = importlib.util.spec_from_file_location("bench_mnist", ROOT / "bench" / "mnist.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "latency.json"
    assert bench.main(["--models", str(folder), "--latency-only", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    entry = result["models"]["tiny-mnist"]
    assert "metrics" not in entry and entry["copied_metrics"] == {"pixel_accuracy": 0.5}
    assert entry["latency"]["sample_10_digits_s"] > 0
    assert "split" not in result["meta"] and "copied" in result["meta"]["copied_metrics"]
    assert "quality NOT measured here" in capsys.readouterr().out


# --- the card figures against a fresh evaluation on the 200 gallery digits ---------------------------------
# The gallery holds the first 20 test images of each digit, so its mean is an estimate of the test-set figure
# with standard error sd / sqrt(200) over the per-image values. A tolerance of 4 standard errors fails a correct
# card with probability below 1e-4 per figure (and the class balance of the gallery against the test set's
# 8.9-11.4 % per digit moves the mean by far less), while any real mismatch - another model's card, another
# quantization or threshold, random or broken weights - moves pixel accuracy and NLL by many standard errors.
# (Two shipped models of the same quantization differ by less than that: 200 digits cannot tell the Q=2 models
# apart, about 0.003 in pixel accuracy and 6 nats of NLL at 4 standard errors; the test-set figures can.) Bayes accuracy is checked on 20 of the digits (two of each; scoring all ten classes costs
# ten forwards): more errors than a binomial with the card's error rate gives with probability 1e-4 fails.


def binomial_upper_limit(n: int, p: float, tail: float = 1e-4) -> int:
    """The smallest k with P(X > k) < tail for X ~ Binomial(n, p)."""
    cdf = 0.0
    for k in range(n + 1):
        cdf += math.comb(n, k) * p ** k * (1 - p) ** (n - k)
        if 1 - cdf < tail:
            return k
    return n


@pytest.fixture(scope="module")
def gallery():
    images, labels = load_gallery()
    return images, torch.as_tensor(labels).long()


@pytest.mark.parametrize("name", MNIST_MODELS)
@torch.no_grad()
def test_card_figures_agree_with_a_fresh_evaluation_on_the_gallery(name, gallery):
    images, labels = gallery
    model = load_pretrained(ROOT / "pretrained" / name)
    card = model.metrics
    dc = model.data_config
    x = to_sequences(images, model.config.quantization_levels, int(dc.get("threshold", 127))).long()  # (200, 784)
    logp = forward_rows(model, x, F.one_hot(labels, 10).to(next(model.parameters()).dtype)).float()  # true digit only
    ll = logp.gather(-1, x[..., None]).squeeze(-1)
    accuracy = (logp.argmax(-1) == x).double().mean(dim=1)
    nll = -ll.double().sum(dim=1)
    n = x.shape[0]
    for label, values, figure in (("pixel accuracy", accuracy, card["pixel_accuracy"]), ("NLL", nll, card["nll_nats_per_image"])):
        tolerance = 4 * values.std().item() / math.sqrt(n)
        assert abs(values.mean().item() - figure) <= tolerance, (name, label, values.mean().item(), figure, tolerance)
    few = torch.cat([torch.nonzero(labels == d)[:2, 0] for d in range(10)])
    scores, _ = score_levels(model, x[few])
    errors = int((scores.sum(-1).argmax(1) != labels[few]).sum())
    assert errors <= binomial_upper_limit(len(few), 1 - card["bayes_accuracy"]), (name, errors)
