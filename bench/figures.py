"""Write the measured figures into the model cards and the README, from the files that hold them:
each model's config.json (train.py's test evaluation) and bench/results/*.json (the benchmarks).

    python bench/figures.py           # rewrite every generated block
    python bench/figures.py --check   # exit 1, naming the files, where a block disagrees with its sources

Only the text between a block's two marker lines is written (engine/cards.py: block_markers); the rest
of a card is its own. A card without its block (a new model) gets one appended at its end. tests/test_figures.py runs the check, so a card or the README that quotes a figure
other than the one measured fails the suite.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.cards import block_markers, mnist_figures_block, nstep_block, read_block, replace_block  # noqa: E402
from engine.checkpoint import list_pretrained, read_config  # noqa: E402

RESULTS = ROOT / "bench" / "results"


def _load(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def sources(root: Path = ROOT) -> dict:
    """Every shipped model's config.json and the bench results the blocks quote."""
    pretrained = root / "pretrained"
    configs = {name: read_config(pretrained / name) for name, err in sorted(list_pretrained(pretrained).items()) if err is None}
    results = root / "bench" / "results"
    return {"configs": configs, "mnist": _load(results / "mnist.json"),
            "reference": _load(results / "mnist-reference-accuracy.json"), "nstep": _load(results / "fourier-nstep.json")}


def card_blocks(name: str, src: dict) -> dict[str, str]:
    """key -> body of every generated block the card of `name` carries."""
    config = src["configs"][name]
    if config["data"].get("task") == "fourier" and name in src["nstep"].get("models", {}):
        return {"nstep": nstep_block(src["nstep"])}
    if config["data"].get("task") != "mnist":
        return {}
    entry = src["mnist"].get("models", {}).get(name, {})
    measured_with = entry.get("measured_with")  # bench/mnist.py's merged entries carry their own run's meta
    meta = {**src["mnist"].get("meta", {}), **(measured_with if isinstance(measured_with, dict) else {})}
    return {"mnist": mnist_figures_block(config.get("metrics", {}), entry.get("latency"), meta,
                                         src["reference"].get("models", {}).get(name))}


def _f(value, fmt: str) -> str:
    return "—" if value is None else format(value, fmt)


def test_digits(name: str, root: Path = ROOT) -> str:
    """How many test digits train.py scored a model on: its recipe's data.eval_test_images (0 = all 10,000)."""
    try:
        n = json.loads((root / "configs" / f"{name}.json").read_text()).get("data", {}).get("eval_test_images", 0)
    except (OSError, ValueError):
        return "?"
    return f"{n or 10_000:,}"


def readme_models_block(src: dict) -> str:
    """The README's figures table: test figures from config.json, the reference's pixel-accuracy terms and
    CPU latency from bench/results."""
    mnist, fourier, other = [], [], []
    for name, config in src["configs"].items():
        m = config.get("metrics", {})
        task = config["data"].get("task")
        if task == "mnist":
            lat = src["mnist"].get("models", {}).get(name, {}).get("latency", {})
            ref = src["reference"].get("models", {}).get(name, {})
            mnist.append(f"| `{name}` | {config['data']['quantization']['levels']} | {test_digits(name)} | {_f(m.get('pixel_accuracy'), '.5f')} | "
                         f"{_f(ref.get('pixel_accuracy_783'), '.5f')} | {_f(m.get('nll_nats_per_image'), '.2f')} | "
                         f"{_f(100 * m['bayes_accuracy'] if 'bayes_accuracy' in m else None, '.2f')} % | "
                         f"{_f(lat.get('sample_10_digits_s'), '.2f')} s | {_f(lat.get('class_posterior_by_prefix_1_image_s'), '.3f')} s | "
                         f"{_f(lat.get('complete_bottom_half_n4_p32_s'), '.2f')} s |")
        elif task == "fourier":
            fourier.append(f"| `{name}` | {_f(m.get('teacher_forced_accuracy'), '.4f')} | {_f(m.get('rolling_origin_accuracy_8'), '.4f')} | "
                           f"{_f(m.get('mae_h32'), '.4f')} | {_f(m.get('mae_h128'), '.4f')} |")
        else:
            other.append(f"| `{name}` | " + ", ".join(f"{k} {v:.4g}" for k, v in m.items()) + " |")
    parts = []
    if mnist:
        meta = src["mnist"].get("meta", {})
        parts.append("MNIST, the official test images (all 10,000 unless the column says fewer: the first N; pixel accuracy over 784 pixels as `train.py` scores it, and over pixels "
                     "1..783 as the reference scores it; the reference's own figures are 0.9718 for Q=2 and 0.8968 for Q=256) "
                     f"and CPU seconds per call, one torch thread ({meta.get('cpu', '?')}, {meta.get('cores', '?')} cores; "
                     f"{('load average ' + str(meta['load_1min']) + ' when measured') if 'load_1min' in meta else 'the load when measured: bench/results/mnist.json, its meta and the measured_with of each entry'}):\n\n"
                     "| model | Q | test digits | pixel accuracy | on the reference's terms | NLL (nats) | Bayes accuracy | ten digits sampled | "
                     "live posterior | bottom-half completion |\n|---|---|---|---|---|---|---|---|---|---|\n" + "\n".join(mnist))
    if fourier:
        parts.append("Fourier, 256 test curves (8-step rolling-origin accuracy from 16 evenly spaced origins per curve; "
                     "MAE in signal units):\n\n| model | teacher-forced accuracy | 8-step rolling-origin accuracy | MAE 32 ahead | "
                     "MAE 128 ahead |\n|---|---|---|---|---|\n" + "\n".join(fourier))
    if other:
        parts.append("Other models (config.json's test metrics):\n\n| model | metrics |\n|---|---|\n" + "\n".join(other))
    return "\n\n".join(parts)


def expected(root: Path = ROOT) -> dict[Path, dict[str, str]]:
    """file -> {block key: body} for every generated block."""
    src = sources(root)
    out = {root / "README.md": {"models": readme_models_block(src)}}
    if src["nstep"]:
        out[root / "docs" / "nstep.md"] = {"nstep": nstep_block(src["nstep"])}
    for name in src["configs"]:
        blocks = card_blocks(name, src)
        if blocks:
            out[root / "pretrained" / name / "README.md"] = blocks
    return out


def disagreements(root: Path = ROOT) -> list[str]:
    """One line per block that is missing or differs from what its sources give."""
    problems = []
    for path, blocks in expected(root).items():
        text = path.read_text() if path.exists() else ""
        for key, body in blocks.items():
            found = read_block(text, key)
            if found is None:
                problems.append(f"{path.relative_to(root)}: no figures:{key} block")
            elif found != body:
                problems.append(f"{path.relative_to(root)}: the figures:{key} block differs from its sources")
    return problems


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 on any difference")
    args = parser.parse_args(argv)
    if args.check:
        problems = disagreements()
        print("\n".join(problems) or "every generated block agrees with its sources")
        return 1 if problems else 0
    for path, blocks in expected().items():
        text = path.read_text()
        for key, body in blocks.items():
            if read_block(text, key) is None:  # a new model's card: the block goes at its end
                begin, end = block_markers(key)
                text = text.rstrip("\n") + f"\n\n## Measured figures\n\n{begin}\n{end}\n"
            text = replace_block(text, key, body)
        path.write_text(text)
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
