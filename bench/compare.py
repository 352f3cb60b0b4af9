"""Every shipped image model on the same work, for the Compare page's table and scatter: test NLL and bits
per dimension, Bayes-rule accuracy, seconds to sample ten digits, the live posterior and a completion,
and the parameter count. Quality is measured here, never copied from config.json.

    python bench/compare.py [--data-dir ../shared/data/mnist] [--models DIR ...] [--limit N]
                            [--bayes-limit 1000] [--threads 1] [--device cpu|cuda] [--force] [--out FILE]

- NLL and bits/dim: all 10,000 test digits (the first --limit), each scored under its own label only.
- Bayes accuracy: p(y | x) over all ten digits with a uniform prior on the first --bayes-limit test digits
  (scoring under every class costs ten forwards per digit; 0 = all of them); the count is in the output.
- CPU seconds, one torch thread per task (engine/threads.py), medians (bench/mnist.py's cpu_latency):
  sample ten digits (one per class), the live posterior of one digit (class_posterior_by_prefix), complete
  its bottom half (n=4, 32 particles).
- --device cuda: the GPU figures instead (NLL and Bayes accuracy on the first 1000 test digits, seconds to
  sample ten digits and to sample 1000 digits, 100 of each, in calls of the engine's 100 images), under the
  entry's "gpu"; its CPU figures stay as they were.

Cheap to rerun when models are added: each model's entry is keyed by the sha256 of its model.safetensors
and by the settings it was measured with, and only new or changed models are measured (--force: all).
The results, each section with the machine it ran on (bench/machine.py), go to bench/results/compare.json
after every model, and a table is printed.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.machine import machine_meta  # noqa: E402
from bench.mnist import cpu_latency, mnist_folders, seconds, true_class_nll  # noqa: E402
from engine.checkpoint import WEIGHTS_NAME, load_pretrained  # noqa: E402
from engine.data.mnist import load_split  # noqa: E402
from engine.image_tasks import sample_images  # noqa: E402
from engine.images import MAX_IMAGES  # noqa: E402
from engine.recipes.mnist import evaluate_mnist, to_sequences  # noqa: E402
from engine.threads import TASK_THREADS  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "results" / "compare.json"
GPU_IMAGES = 1000


def weights_sha256(folder: Path) -> str:
    """The sha256 of a model folder's weights file: an entry is re-measured when it changes."""
    digest = hashlib.sha256()
    with open(Path(folder) / WEIGHTS_NAME, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def quality(model, images: torch.Tensor, labels: torch.Tensor, bayes_limit: int) -> dict:
    """NLL on every image under its own label; Bayes accuracy on the first bayes_limit (0 = all) of them."""
    dc = model.data_config
    levels = to_sequences(images, model.config.quantization_levels, int(dc.get("threshold", 127)))
    started = time.perf_counter()
    out = {"test": true_class_nll(model, levels, labels)}
    if model.config.cond_channels:
        n = len(labels) if not bayes_limit else min(bayes_limit, len(labels))
        bayes = evaluate_mnist(model, levels[:n], labels[:n])
        out["bayes"] = {"accuracy": bayes["bayes_accuracy"], "images": n,
                        **{k: v for k, v in bayes.items() if k.startswith("bayes_accuracy_after")}}
    else:
        out["bayes"] = None  # unconditional: it cannot tell digits apart
    out["quality_s"] = time.perf_counter() - started
    return out


def gpu_sample_seconds(model, per_digit: int = 1, repeats: int = 3) -> float:
    """Seconds to sample per_digit images of each of the ten digits (an unconditional model: 10 * per_digit
    images) on the model's device (the GPU), in calls of at most MAX_IMAGES images, median of `repeats`,
    synchronized."""
    device = next(model.parameters()).device
    g = torch.Generator(device=device).manual_seed(0)
    conditional = bool(model.config.cond_channels)
    per_call = max(1, MAX_IMAGES // 10)

    def run():
        for done in range(0, per_digit, per_call):
            n = min(per_call, per_digit - done)
            sample_images(model, list(range(10)) if conditional else None, n if conditional else 10 * n, generator=g)
        if device.type == "cuda":
            torch.cuda.synchronize()

    run()  # warm-up (kernels, allocator)
    return seconds(run, repeats)


def measure(folder: Path, device: str, images, labels, bayes_limit: int) -> dict:
    """One section ("cpu" or "gpu") of a model's entry."""
    model = load_pretrained(folder).to(device)
    section = quality(model, images, labels, bayes_limit)
    if device == "cpu":
        section["seconds"] = cpu_latency(model)
    else:
        section["seconds"] = {"sample_10_digits_s": gpu_sample_seconds(model),
                              "sample_1000_digits_s": gpu_sample_seconds(model, per_digit=GPU_IMAGES // 10, repeats=1)}
    return section


def describe(folder: Path) -> dict:
    model = load_pretrained(folder)
    return {"family": model.family_name, "quantization_levels": model.config.quantization_levels,
            "conditional": bool(model.config.cond_channels), "parameters": sum(p.numel() for p in model.parameters())}


def table(models: dict, names: list[str]) -> str:
    """The printed table: one row per model, its CPU figures (and GPU ones where measured)."""
    def f(value, fmt):
        return "not measured" if value is None else format(value, fmt)

    rows = [["model", "family", "Q", "parameters", "bits/dim", "NLL nats", "test digits", "Bayes acc", "Bayes digits",
             "sample 10 s", "posterior s", "complete s", "GPU sample 10 s", "GPU sample 1000 s"]]
    for name in names:
        e = models.get(name, {})
        cpu, gpu = e.get("cpu") or {}, e.get("gpu") or {}
        test, bayes, sec = cpu.get("test") or {}, cpu.get("bayes") or {}, cpu.get("seconds") or {}
        rows.append([name, e.get("family", "?"), str(e.get("quantization_levels", "?")), f(e.get("parameters"), ","),
                     f(test.get("bits_per_dim"), ".4f"), f(test.get("nll_nats_per_image"), ".2f"), f(test.get("images"), "d"),
                     f(bayes.get("accuracy"), ".4f") if cpu.get("bayes", {}) is not None else "unconditional",
                     f(bayes.get("images"), "d") if bayes else "-",
                     f(sec.get("sample_10_digits_s"), ".3f"), f(sec.get("class_posterior_by_prefix_1_image_s"), ".3f"),
                     f(sec.get("complete_bottom_half_n4_p32_s"), ".3f"),
                     f((gpu.get("seconds") or {}).get("sample_10_digits_s"), ".4f"),
                     f((gpu.get("seconds") or {}).get("sample_1000_digits_s"), ".2f")])
    if not any(models.get(name, {}).get("gpu") for name in names):  # no GPU run yet: no columns of "not measured"
        rows = [r[:-2] for r in rows]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(" | ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data" / "mnist"))
    parser.add_argument("--models", nargs="*", help="model folders (default: every MNIST model in pretrained/)")
    parser.add_argument("--limit", type=int, default=0, help="NLL on the first N test digits only (0 = all 10,000)")
    parser.add_argument("--bayes-limit", type=int, default=1000, help="Bayes accuracy on the first N test digits (0 = all)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the quality evaluation (tasks: engine/threads.py)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help=f"cuda: GPU figures on the first {GPU_IMAGES} test digits, kept beside the CPU ones")
    parser.add_argument("--force", action="store_true", help="measure every model again, changed or not")
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args(argv)
    if min(args.limit, args.bayes_limit) < 0:
        print("error: --limit and --bayes-limit must be >= 0.", file=sys.stderr)
        return 2
    if args.device == "cuda":
        if not torch.cuda.is_available():
            print("error: --device cuda, but torch sees no CUDA GPU here; leave --device out to run on the CPU.", file=sys.stderr)
            return 2
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    torch.set_num_threads(args.threads)
    folders = [Path(m) for m in args.models] if args.models else mnist_folders(ROOT / "pretrained")
    if not folders:
        print("No MNIST models found in pretrained/; train one with train.py or pass --models.", file=sys.stderr)
        return 1
    names = [f.name for f in folders]
    if len(set(names)) < len(names):
        print("error: two --models folders share a name; results are keyed by folder name.", file=sys.stderr)
        return 2
    try:
        images, labels = load_split(args.data_dir, "test")
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    limit = args.limit or len(labels)
    if args.device == "cuda":
        limit = min(limit, GPU_IMAGES)
    images, labels = images[:limit], labels[:limit]
    bayes_limit = min(args.bayes_limit or limit, limit) if args.device == "cpu" else limit
    section_name = "cpu" if args.device == "cpu" else "gpu"
    settings = {"test_images": limit, "bayes_images": bayes_limit, "threads": args.threads}

    out = Path(args.out)
    try:
        results = json.loads(out.read_text()) if out.exists() else {}
    except ValueError:
        results = {}
    models = results.get("models", {})
    for folder in folders:
        sha = weights_sha256(folder)
        entry = models.get(folder.name, {})
        if entry.get("sha256") != sha:  # new or changed weights: every section is stale
            entry = {"sha256": sha, **describe(folder)}
        section = entry.get(section_name)
        if section and section.get("settings") == settings and not args.force:
            print(f"{folder.name}: unchanged (sha256 {sha[:12]}), kept", file=sys.stderr)
            continue
        print(f"{folder.name}: measuring on {args.device} ...", file=sys.stderr, flush=True)
        measured = measure(folder, args.device, images, labels, bayes_limit)
        entry[section_name] = {**measured, "settings": settings,
                               "measured_with": {**machine_meta(args.threads, args.device), "task_threads": dict(TASK_THREADS),
                                                 "date": datetime.date.today().isoformat()}}
        models[folder.name] = entry
        print(f"{folder.name}: quality in {measured['quality_s']:.0f} s", file=sys.stderr, flush=True)
        out.parent.mkdir(parents=True, exist_ok=True)  # written after every model: a cut run keeps what it measured
        out.write_text(json.dumps({"meta": meta_block(), "models": dict(sorted(models.items()))}, indent=2) + "\n")
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"meta": meta_block(), "models": models}, indent=2) + "\n")
    print(table(models, names))
    print(f"bits/dim and NLL on the test digits under their own label; Bayes accuracy on the first 'Bayes digits'; "
          f"seconds on the CPU at one thread per task (medians). Written to {out}.")
    return 0


def meta_block() -> dict:
    return {"script": "python bench/compare.py", "what": {
        "test": "NLL (nats per image), bits per dimension and pixel accuracy on the first settings.test_images MNIST test "
                "digits, each under its own label",
        "bayes": "Bayes-rule accuracy, uniform prior, on the first settings.bayes_images test digits (null: unconditional model)",
        "seconds": "CPU: sample ten digits (one per class), the live posterior of one digit, complete its bottom half "
                   "(n=4, 32 particles), medians; GPU: sample ten digits",
        "sha256": "of the model's model.safetensors: an entry with another hash is re-measured"},
        "sections": "cpu / gpu, each with its settings and the machine it was measured on (measured_with)"}


if __name__ == "__main__":
    sys.exit(main())
