"""Test-set quality and CPU latency of the shipped MNIST models of every family (each folder in pretrained/
whose config.json says task "mnist"), through the model interface only.

    python bench/mnist.py [--data-dir ../shared/data/mnist] [--limit N] [--threads 1] [--models DIR ...]
                          [--split test|val] [--device cpu|cuda] [--latency-only]

Quality on the official 10,000-image test set (the first N with --limit), each model under its own
quantization (named in the table): teacher-forced pixel accuracy, NLL in nats per image and bits per
dimension, Bayes-rule accuracy p(y | x) = p(x | y) p(y) / p(x) with a uniform prior, and the same after
observing the first 25/50/75% of the pixels in raster order. Latency: class_posterior_by_prefix for one
image (median of 5), sampling ten digits (one per class) and completing a half-hidden digit (n=4,
32 particles), on the CPU only, each task at its own thread count (engine/threads.py, whatever --threads says;
--threads sets the quality evaluation's). Prints a table and writes bench/results/mnist.json. --split val scores the
validation images instead (for choosing between candidates without touching the test set); --device
cuda runs the quality figures on the GPU in float32 and skips the CPU latencies. --latency-only measures
the latencies alone: the JSON then carries each config.json's test figures under "copied_metrics", marked
as copied in its meta, and no "metrics" at all. Results merge into the file per model: the models of this
run replace their own entries (each carries this run's meta as "measured_with"), the others stay.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.machine import machine_meta  # noqa: E402
from engine.checkpoint import load_pretrained, read_config  # noqa: E402
from engine.data.mnist import VAL_SIZE, load_gallery, load_split  # noqa: E402
from engine.image_tasks import class_posterior_by_prefix, complete, forward_rows, sample_images  # noqa: E402
from engine.images import conditions  # noqa: E402
from engine.recipes.mnist import evaluate_mnist, to_sequences  # noqa: E402
from engine.threads import TASK_THREADS  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def seconds(call, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def cpu_latency(model) -> dict:
    """Seconds for the app's three calls on one gallery digit (medians)."""
    gallery, _ = load_gallery()
    mask = torch.ones(28, 28, dtype=torch.bool)
    mask[14:] = False
    g = torch.Generator().manual_seed(0)
    class_posterior_by_prefix(model, gallery[0])  # warm-up
    return {
        "class_posterior_by_prefix_1_image_s": seconds(lambda: class_posterior_by_prefix(model, gallery[0]), 5),
        "sample_10_digits_s": seconds(lambda: sample_images(model, list(range(10)), 1, generator=g), 3),
        "complete_bottom_half_n4_p32_s": seconds(lambda: complete(model, gallery[0], mask, None, n=4, num_particles=32, generator=g), 1),
    }


@torch.no_grad()
def true_class_nll(model, levels: torch.Tensor, labels: torch.Tensor, batch_images: int = 10) -> dict:
    """NLL of level sequences (N, H*W) under their own label only (one forward per image, a tenth of
    evaluate_mnist's cost, which scores every class for Bayes' rule): the same nll_nats_per_image,
    bits_per_dim and pixel_accuracy as evaluate_mnist, plus the image count."""
    device = next(model.parameters()).device
    N = levels.shape[1]
    hits = nll = 0.0
    for s in range(0, levels.shape[0], batch_images):
        x = levels[s:s + batch_images].to(device).long()
        cond = conditions(model, labels[s:s + batch_images].to(device)) if model.config.cond_channels else None
        logp = forward_rows(model, x, cond).float()
        nll -= logp.gather(-1, x[..., None]).sum().item()
        hits += (logp.argmax(-1) == x).sum().item()
    count = levels.shape[0]
    return {"pixel_accuracy": hits / (count * N), "nll_nats_per_image": nll / count,
            "bits_per_dim": nll / count / (N * math.log(2)), "images": count}


def merge_results(out: Path, meta: dict, results: dict) -> dict:
    """The JSON at `out` with `results` merged in per model (other models' entries kept), each new entry
    carrying this run's meta as its "measured_with" (which overrides the file's "meta" for that entry). The
    file's "meta" stays the earlier runs' while their entries remain, else it becomes this run's. -> the JSON."""
    try:
        existing = json.loads(out.read_text()) if out.exists() else {}
    except ValueError:  # unreadable: start afresh rather than fail after the measurements
        existing = {}
    models = dict(existing.get("models", {}))
    kept = set(models) - set(results)
    for name, entry in results.items():
        models[name] = {**entry, "measured_with": meta}
    return {"meta": existing["meta"] if kept and "meta" in existing else meta, "models": models}


def bench_model(model, images: torch.Tensor | None, labels: torch.Tensor | None, latency: bool = True) -> dict:
    """images None: quality is not measured; config.json's figures (train.py measured them with the same
    evaluate_mnist) are carried along under "copied_metrics", never "metrics", so nothing reads them as
    this run's measurement. latency False: no latency figures (they are CPU figures; the model may sit on
    a GPU)."""
    dc = model.data_config
    Q = model.config.quantization_levels
    out = {"family": model.family_name, "parameters": sum(p.numel() for p in model.parameters()),
           "quantization": dc.get("quantization", {})}
    if images is None:
        out["copied_metrics"] = dict(model.metrics)
    else:
        started = time.perf_counter()
        out["metrics"] = evaluate_mnist(model, to_sequences(images, Q, int(dc.get("threshold", 127))), labels)
        out["evaluation_s"] = time.perf_counter() - started
    out["latency"] = cpu_latency(model) if latency else {}
    out["receptive_field"] = model.receptive_field
    return out


def mnist_folders(root: Path) -> list[Path]:
    """The model folders under root whose config.json says task "mnist", any family."""
    found = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []:
        try:
            if read_config(folder).get("data", {}).get("task") == "mnist":
                found.append(folder)
        except ValueError:  # not a model folder
            continue
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data" / "mnist"))
    parser.add_argument("--limit", type=int, default=0, help="evaluate the first N images only (0 = all of the split)")
    parser.add_argument("--split", choices=("test", "val"), default="test",
                        help="test: the official 10,000; val: the last --val-size training images (as train.py holds out)")
    parser.add_argument("--val-size", type=int, default=VAL_SIZE)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="cuda: quality figures on the GPU (float32, no TF32), no latencies")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--models", nargs="*", help="model folders (default: every MNIST model in pretrained/)")
    parser.add_argument("--out", help="JSON to write (default: bench/results/mnist.json, or mnist-val.json for --split val, "
                                      "so a validation run never overwrites the test figures)")
    parser.add_argument("--latency-only", action="store_true",
                        help="measure CPU latency only; each model's config.json test figures are copied along, marked as copied")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.device == "cuda":
        if not torch.cuda.is_available():
            print("error: --device cuda, but torch sees no CUDA GPU here; leave --device out to run on the CPU.", file=sys.stderr)
            return 2
        if args.latency_only:
            print("error: --latency-only measures CPU latency; it cannot be combined with --device cuda.", file=sys.stderr)
            return 2
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    folders = [Path(m) for m in args.models] if args.models else mnist_folders(ROOT / "pretrained")
    if not folders:
        print("No MNIST models found in pretrained/; train one with train.py or pass --models.", file=sys.stderr)
        return 1
    names = [f.name for f in folders]
    twins = sorted({n for n in names if names.count(n) > 1})
    if twins:  # results are keyed by folder name: one would silently replace the other
        print(f"error: two --models folders share the name {twins[0]!r}; compare them in separate runs (with separate --out files).",
              file=sys.stderr)
        return 2
    images = labels = None
    if not args.latency_only:
        try:
            images, labels = load_split(args.data_dir, args.split, val_size=args.val_size)
        except (FileNotFoundError, ValueError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        if args.limit:
            images, labels = images[:args.limit], labels[:args.limit]
    results = {}
    for folder in folders:
        model = load_pretrained(folder).to(args.device)
        results[folder.name] = bench_model(model, images, labels, latency=args.device == "cpu")
        if labels is not None:
            print(f"{folder.name}: evaluated {len(labels)} images in {results[folder.name]['evaluation_s']:.0f} s", file=sys.stderr)

    names = list(results)
    rows = [("family", lambda r: r["family"]), ("parameters", lambda r: f"{r['parameters']:,}"),
            ("quantization levels Q", lambda r: str(r["quantization"].get("levels", "?")))]
    quality = "copied_metrics" if args.latency_only else "metrics"
    label = " (copied from config.json)" if args.latency_only else ""
    for key in next(iter(results.values()))[quality]:
        rows.append((key + label, lambda r, key=key: f"{r[quality].get(key, float('nan')):.4f}"))
    for key in next(iter(results.values()))["latency"]:
        rows.append((key, lambda r, key=key: f"{r['latency'][key]:.3f}"))
    table = [[""] + names] + [[key] + [fmt(results[n]) for n in names] for key, fmt in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    split = "test" if args.latency_only else args.split
    if args.latency_only:
        print(f"CPU latency on {args.device}, {args.threads} CPU thread(s), in seconds; quality NOT measured here "
              "(copied from each config.json: train.py's test evaluation)")
    else:
        print(f"MNIST {split} set ({len(labels)} images) on {args.device}, {args.threads} CPU thread(s); latencies in seconds")
    for row in table:
        print(" | ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    for n in names:
        print(f"{n}: {results[n]['quantization'].get('rule', 'quantization not stated')}")

    out = Path(args.out or ROOT / "bench" / "results" / ("mnist-val.json" if split == "val" else "mnist.json"))
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.latency_only:
        meta = {"measured": "CPU latency only", "copied_metrics": "each model's config.json metrics (train.py's final "
                "test evaluation), copied, not measured by this run", **machine_meta(args.threads, args.device),
                "task_threads": dict(TASK_THREADS)}
    else:
        meta = {"measured": "quality and latency" if args.device == "cpu" else "quality", "split": split,
                "images": len(labels), **machine_meta(args.threads, args.device), "prior": "uniform", "prefix_order": "raster",
                "task_threads": dict(TASK_THREADS)}
    out.write_text(json.dumps(merge_results(out, meta, results), indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
