"""What the load test's sessions draw and how their pages' answers are checked (bench/load.py): one mouse
stroke per digit, slanted three ways so 30 sessions draw 30 different images; the 28x28 image the page
should read from a stroke, rendered locally; and the cross-talk check of what each session was shown."""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np

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
