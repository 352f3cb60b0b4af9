"""Digits drawn as pen strokes, and how the Q=256 models read them.

What the load test's sessions draw and how their pages' answers are checked (bench/load.py): one mouse
stroke per digit, slanted three ways so 30 sessions draw 30 different images; the 28x28 image the page
should read from a stroke, rendered locally; and the cross-talk check of what each session was shown.

Real MNIST digits redrawn as strokes (digit_strokes: the skeleton of the digit, traced into mouse paths,
as the browser test draws them on the canvas), and a measurement of how often each model ranks the
true digit first on the digits as they are and on the same digits drawn with the canvas's pen, read
as the Guess page reads them (engine.drawing.frame_like_mnist), for several pen widths:

    python bench/strokes.py [--split val|test] [--limit 200] [--models wavenet-mnist-q256 ...]
                            [--pens 14,20] [--threads 1]

writes bench/results/strokes-<split>.json. --split val (the first images of the last 5,000 training
images) chooses the pen; --split test (the shipped gallery: the first 20 test digits of each class)
reports it. Pen widths are in canvas pixels (280x280 canvas, a digit about 200 pixels tall).
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

CANVAS = 280
# One stroke per digit, in canvas pixels: the canvas sends its drawing once per mouse-up.
STROKES = {
    0: [(140 + 60 * np.sin(a), 140 - 95 * np.cos(a)) for a in np.linspace(0, 2 * np.pi, 17)],
    1: [(150, 40), (140, 240)],
    2: [(80, 90), (110, 50), (160, 45), (200, 80), (190, 130), (80, 235), (210, 235)],
    3: [(80, 60), (150, 40), (200, 80), (150, 135), (110, 135), (150, 135), (205, 180), (160, 240), (80, 225)],
    4: [(170, 240), (170, 40), (60, 170), (215, 170)],
    5: [(200, 45), (95, 45), (85, 130), (150, 115), (200, 160), (185, 220), (130, 240), (80, 220)],
    6: [(185, 50), (120, 90), (85, 170), (110, 235), (165, 235), (190, 185), (150, 150), (90, 180)],
    7: [(70, 55), (210, 55), (125, 240)],
    8: [(190, 70), (140, 40), (90, 70), (110, 120), (170, 160), (190, 210), (140, 245), (90, 210), (110, 160),
        (170, 120), (190, 70)],
    9: [(195, 80), (150, 45), (100, 60), (95, 110), (140, 130), (195, 95), (190, 150), (175, 245)],
}
SLANT = (0.0, 0.35, -0.35)  # sessions 0-9 upright, 10-19 leaning right, 20-29 left: 30 different drawings

def stroke(i: int) -> list[tuple[float, float]]:
    """Session i's stroke: digit i % 10, slanted by SLANT[i // 10] (a slant survives MNIST's framing)."""
    k = SLANT[(i // 10) % len(SLANT)]
    return [(x - k * (y - CANVAS / 2), y) for x, y in STROKES[i % 10]]


def render(points) -> np.ndarray:
    """The 28x28 image the page should read from this stroke (PIL draws it; the canvas smooths it a little)."""
    from PIL import Image, ImageDraw

    from app.canvas import CANVAS_STROKE, canvas_to_digit

    img = Image.new("L", (CANVAS, CANVAS), 0)
    ImageDraw.Draw(img).line(points, fill=255, width=CANVAS_STROKE, joint="curve")
    return canvas_to_digit(np.asarray(img))


def decode(value) -> np.ndarray:
    """A plotly array as the browser received it: base64 typed array or plain list."""
    if isinstance(value, dict):
        shape = [int(n) for n in str(value.get("shape") or "-1").split(",")]
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"]).reshape(shape)
    return np.asarray(value, dtype=float)


def page_model(root: Path) -> tuple[str, object]:
    """The model "Guess the digit" picks by default: the first usable MNIST model by name."""
    from engine.checkpoint import WEIGHTS_NAME, list_pretrained, load_pretrained, read_config

    names = sorted(name for name, problem in list_pretrained(root).items()
                   if problem is None and read_config(root / name).get("data", {}).get("task") == "mnist"
                   and (root / name / WEIGHTS_NAME).is_file())
    if not names:
        raise SystemExit(f"No MNIST model in {root}; train one (train.py) or pass --stand-ins.")
    return names[0], load_pretrained(root / names[0])


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two 28x28 images after a small blur: the canvas smooths strokes a little, so the
    page's image and the local rendering of the same stroke differ by a pixel here and there."""
    from PIL import Image, ImageFilter

    x, y = (np.asarray(Image.fromarray(np.asarray(v, np.uint8)).filter(ImageFilter.GaussianBlur(1.5)), np.float64).ravel()
            for v in (a, b))
    return float(x @ y / max(np.linalg.norm(x) * np.linalg.norm(y), 1e-12))


def check_crosstalk(records: list[dict], model) -> dict:
    """Every shown image nearest to its own session's stroke among all 30 strokes (rendered locally), and
    every shown posterior equal to the page's computation (class_posterior_by_prefix) on the shown image."""
    import torch

    from engine.image_tasks import class_posterior, class_posterior_by_prefix

    variants = 10 * len(SLANT)
    expected = [render(stroke(j)) for j in range(variants)]
    images, bars, owners = [], [], []
    for rec in records:
        for u in rec["updates"]:
            if u["seen"] is None or u["bar"] is None:
                continue
            images.append(decode(u["seen"])[..., 0].astype(np.uint8))
            bars.append(decode(u["bar"]).astype(np.float64))
            owners.append(rec["session"])
    result = {"checked": len(images), "image_not_own": 0, "posterior_mismatch": 0, "max_posterior_diff": 0.0,
              "own_similarity_min": None, "margin_min": None, "template_accuracy": None, "page_argmax_equals_drawn": 0}
    if not images:
        return {**result, "ok": False}
    unique, inverse = np.unique(np.stack(images).reshape(len(images), -1), axis=0, return_inverse=True)
    unique = unique.reshape(-1, 28, 28)
    # the page's own call, one image at a time (the posterior after the last pixel): only cross-talk differs
    posts = np.stack([class_posterior_by_prefix(model, torch.from_numpy(img))[0, -1].numpy() for img in unique])
    scores = np.array([[similarity(img, e) for e in expected] for img in unique])  # (unique images, variants)
    own, margins = [], []
    for bar, owner, u in zip(bars, owners, inverse.reshape(-1)):
        mine = scores[u, owner % variants]
        others = np.delete(scores[u], owner % variants).max()
        own.append(mine)
        margins.append(mine - others)
        result["image_not_own"] += int(others >= mine)
        diff = float(np.abs(posts[u] - bar).max())
        result["max_posterior_diff"] = max(result["max_posterior_diff"], diff)
        result["posterior_mismatch"] += int(diff > 1e-4)
        result["page_argmax_equals_drawn"] += int(bar.argmax() == owner % 10)
    local = class_posterior(model, torch.from_numpy(np.stack([render(STROKES[d]) for d in range(10)])))
    result["template_accuracy"] = float((local.argmax(1) == torch.arange(10)).float().mean())
    result["own_similarity_min"], result["margin_min"] = float(min(own)), float(min(margins))
    result["ok"] = result["image_not_own"] == 0 and result["posterior_mismatch"] == 0
    return result


# ---------------------------------------------------------------------------------------------------
# Real digits redrawn with a pen

_N8 = ((-1, 0), (0, 1), (1, 0), (0, -1), (-1, 1), (1, 1), (1, -1), (-1, -1))  # 4-neighbours first: smoother paths


def thin(mask: np.ndarray) -> np.ndarray:
    """bool (H, W) -> its one-pixel-wide skeleton (Zhang and Suen 1984, "A fast parallel algorithm for
    thinning digital patterns")."""
    s = np.pad(np.asarray(mask, bool), 1).astype(np.uint8)
    offsets = ((-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1))  # P2..P9, clockwise from north
    while True:
        changed = False
        for step in (0, 1):
            P = [np.roll(s, (-dy, -dx), axis=(0, 1)) for dy, dx in offsets]
            B = sum(P)
            A = sum(((P[i] == 0) & (P[(i + 1) % 8] == 1)).astype(np.uint8) for i in range(8))
            c = ((P[0] * P[2] * P[4] == 0) & (P[2] * P[4] * P[6] == 0) if step == 0
                 else (P[0] * P[2] * P[6] == 0) & (P[0] * P[4] * P[6] == 0))
            kill = (s == 1) & (B >= 2) & (B <= 6) & (A == 1) & c
            if kill.any():
                s[kill] = 0
                changed = True
        if not changed:
            return s[1:-1, 1:-1].astype(bool)


def trace(skeleton: np.ndarray) -> list[list[tuple[int, int]]]:
    """A skeleton bool (H, W) -> paths of (row, col) that together visit every pixel once; a path that
    starts or ends next to an earlier one joins it, so loops (0, 6, 8, 9) close."""
    remaining = {tuple(int(v) for v in p) for p in np.argwhere(skeleton)}
    done: set = set()

    def around(p, pool):
        return [(p[0] + dy, p[1] + dx) for dy, dx in _N8 if (p[0] + dy, p[1] + dx) in pool]

    paths = []
    while remaining:
        ends = [p for p in remaining if len(around(p, remaining)) <= 1]
        start = min(ends or remaining)
        path = around(start, done)[:1] + [start]
        remaining.discard(start)
        done.add(start)
        cur = start
        while True:
            ahead = around(cur, remaining)
            if not ahead:
                back = [q for q in around(cur, done) if q not in path[-3:]]
                path += back[:1]
                break
            cur = ahead[0]
            path.append(cur)
            remaining.discard(cur)
            done.add(cur)
        paths.append(path)
    return paths


def digit_strokes(image: np.ndarray, canvas: int = CANVAS, upsample: int = 4, every: int = 3) -> list[list[tuple[float, float]]]:
    """A 28x28 uint8 digit -> mouse strokes (x, y) in canvas pixels that redraw it with a pen: the skeleton
    of its ink (thinned at `upsample` times the resolution) traced into paths, every `every`-th point kept."""
    from PIL import Image

    n = image.shape[0] * upsample
    big = np.asarray(Image.fromarray(np.asarray(image, np.uint8)).resize((n, n), Image.Resampling.BILINEAR))
    px = canvas / n
    strokes = []
    for path in trace(thin(big > 127)):
        points = path[::every] + ([path[-1]] if (len(path) - 1) % every else [])
        strokes.append([((c + 0.5) * px, (r + 0.5) * px) for r, c in points])
    return strokes


def draw(strokes, width: int | None = None, canvas: int = CANVAS) -> np.ndarray:
    """Strokes -> the canvas's picture (canvas, canvas) uint8: white lines `width` wide (the app's pen by
    default) with round joints and ends, as the canvas draws them."""
    from PIL import Image, ImageDraw

    from app.canvas import CANVAS_STROKE

    width = width or CANVAS_STROKE
    img = Image.new("L", (canvas, canvas), 0)
    pen = ImageDraw.Draw(img)
    for points in strokes:
        if len(points) > 1:
            pen.line(points, fill=255, width=width, joint="curve")
        for x, y in (points[0], points[-1]):
            pen.ellipse([x - width / 2, y - width / 2, x + width / 2, y + width / 2], fill=255)
    return np.asarray(img)


def ranked_first(model, images: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of images whose true digit has the highest p(digit | image) (engine.class_posterior)."""
    import torch

    from engine.image_tasks import MAX_IMAGES, class_posterior

    best = [class_posterior(model, torch.from_numpy(np.ascontiguousarray(images[i: i + MAX_IMAGES]))).argmax(1).numpy()
            for i in range(0, len(images), MAX_IMAGES)]
    return float((np.concatenate(best) == labels).mean())


def main(argv=None) -> int:
    import torch

    from bench.machine import machine_meta
    from engine.checkpoint import load_pretrained
    from engine.data.mnist import load_gallery, load_split
    from engine.drawing import frame_like_mnist

    from app.canvas import CANVAS_STROKE

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--split", choices=["val", "test"], default="val")
    parser.add_argument("--limit", type=int, default=200)
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data" / "mnist"))
    parser.add_argument("--models", nargs="+", default=["wavenet-mnist-q256"])
    parser.add_argument("--pens", default="14,20", help="pen widths to draw with, in canvas pixels")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.split == "val":
        images, labels = load_split(args.data_dir, "val", download=False)
    else:
        images, labels = load_gallery()
    images, labels = images.numpy()[: args.limit], labels.numpy()[: args.limit]
    strokes = [digit_strokes(img) for img in images]
    pens = [int(w) for w in args.pens.split(",")]
    framed = {pen: np.stack([frame_like_mnist(draw(s, pen)) for s in strokes]) for pen in pens}
    results = {}
    for name in args.models:
        started = time.perf_counter()
        model = load_pretrained(ROOT / "pretrained" / name)
        row = {"as_they_are": ranked_first(model, images, labels)}
        for pen in pens:
            row[f"drawn_pen_{pen}"] = ranked_first(model, framed[pen], labels)
        results[name] = row
        print(name, json.dumps(row), f"({time.perf_counter() - started:.0f} s)", flush=True)
    out = Path(args.out or ROOT / "bench" / "results" / f"strokes-{args.split}.json")
    out.write_text(json.dumps({"meta": {**machine_meta(args.threads), "split": args.split, "images": int(len(labels)),
                                        "app_pen": CANVAS_STROKE, "command": "python bench/strokes.py " + " ".join(argv or sys.argv[1:])},
                               "ranked_first": results}, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
