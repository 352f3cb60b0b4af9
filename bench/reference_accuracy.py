"""The MNIST models' test pixel accuracy on the reference's terms: cheind/autoregressive scores 783
positions (pixel 0 is the model's input, never predicted); train.py and bench/mnist.py score all 784,
pixel 0 included.

    python bench/reference_accuracy.py [--data-dir ../shared/data/mnist] [--models DIR ...]

Pixel 0 (the top-left corner) is background in every one of the 10,000 test images, and a model that
predicts background there for every digit gets all 10,000 of them right. Then, exactly,
acc783 = (acc784 * 784 - 1) / 783, with acc784 the test pixel accuracy in config.json (train.py's
final evaluation; the model card's figure). This script CHECKS both premises - every test image's
pixel 0 is 0, and each model's teacher-forced prediction at pixel 0 is level 0 under every class
(it depends only on the start value and the class) - refuses to write a figure where either fails,
and writes bench/results/mnist-reference-accuracy.json (with --models, the other models' rows stay).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.mnist import mnist_folders  # noqa: E402
from engine.checkpoint import load_pretrained  # noqa: E402
from engine.data.mnist import load_split  # noqa: E402
from engine.images import score_levels  # noqa: E402
from engine.recipes.mnist import to_sequences  # noqa: E402

PIXELS = 784


def acc783(acc784: float) -> float:
    """Accuracy over pixels 1..783 when pixel 0 is right in every image."""
    return (acc784 * PIXELS - 1) / (PIXELS - 1)


def pixel0_predictions(model, image_levels: torch.Tensor) -> list[int]:
    """The model's argmax level at pixel 0 under each class (or the one unconditional row)."""
    _, pred = score_levels(model, image_levels[None])  # (1, K, N)
    return pred[0, :, 0].tolist()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data" / "mnist"))
    parser.add_argument("--models", nargs="*", help="model folders (default: every MNIST model in pretrained/)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "mnist-reference-accuracy.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    images, _ = load_split(args.data_dir, "test")
    corner = images.reshape(images.shape[0], -1)[:, 0]
    background = int((corner == 0).sum())
    print(f"test images whose pixel 0 is 0 (background): {background} of {images.shape[0]}")
    if background != images.shape[0]:
        print("error: some test image has ink at pixel 0; acc783 cannot be derived from acc784.", file=sys.stderr)
        return 1
    folders = [Path(m) for m in args.models] if args.models else mnist_folders(ROOT / "pretrained")
    results = {}
    for folder in folders:
        model = load_pretrained(folder)
        dc = model.data_config
        levels = to_sequences(images[:1], model.config.quantization_levels, int(dc.get("threshold", 127)))[0]
        preds = pixel0_predictions(model, levels)
        a784 = model.metrics["pixel_accuracy"]
        ok = all(p == 0 for p in preds)
        results[folder.name] = {"pixel0_predicted_level_per_class": preds, "pixel0_always_right": ok,
                                "pixel_accuracy_784": a784, "pixel_accuracy_783": acc783(a784) if ok else None}
        print(f"{folder.name}: pixel 0 predicted {preds}; acc784 {a784:.6f} -> acc783 "
              + (f"{acc783(a784):.6f}" if ok else "not derivable"))
    meta = {"split": "test", "images": int(images.shape[0]), "test_images_pixel0_background": background,
            "acc784_from": "config.json metrics.pixel_accuracy (train.py's final test evaluation)",
            "formula": "acc783 = (acc784 * 784 - 1) / 783, valid when pixel 0 is right in every test image"}
    out = Path(args.out)
    kept = json.loads(out.read_text()).get("models", {}) if out.exists() and args.models else {}
    kept = {name: entry for name, entry in kept.items() if (ROOT / "pretrained" / name).is_dir()}  # --models: the others stay
    out.write_text(json.dumps({"meta": meta, "models": dict(sorted({**kept, **results}.items()))}, indent=2) + "\n")
    print(f"wrote {out}")
    return 0 if all(r["pixel0_always_right"] for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
