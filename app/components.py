"""Widget groups. Each draws a few widgets and returns plain values (numbers, dataclasses), so pages
read as widgets -> values -> engine call -> plot."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
import streamlit as st

from engine.data.fourier import MAX_CURVE_LENGTH, FourierCurve


@dataclass(frozen=True)
class SamplerSettings:
    horizon: int
    num_trajectories: int
    temperature: float
    seed: int


# Defaults that read well on a projector: a clear fundamental with two smaller harmonics.
_DEFAULT_COEFFS = (0.8, 0.35, 0.15)
_DEFAULT_PHASES = (0.0, 1.0, -2.0)


def model_picker(usable: list[str], unavailable: dict[str, str], label: str = "Models", key: str = "models") -> list[str]:
    """Multiselect over usable models (all chosen by default); lists the unusable ones with the reason."""
    chosen = st.multiselect(label, usable, default=usable, key=key)
    for name, reason in unavailable.items():
        st.caption(f"**{name}** unavailable: {reason}")
    return chosen


def fourier_curve_controls(data: dict, min_length: int = 0, key: str = "curve") -> FourierCurve:
    """Every parameter of the curve, with defaults from a model's config.json `data` section; the
    default length is at least `min_length`, so the default forecast can be compared with the truth."""
    train = data.get("train_params", {})
    periods = [float(p) for p in data.get("periods") or []]
    if periods:
        period = st.selectbox("Period (the model's condition)", periods, index=len(periods) // 2,
                              format_func=lambda p: f"{p:g} s", key=f"{key}.period")
    else:
        period = st.number_input("Period (s)", min_value=0.1, value=6.0, step=0.5, key=f"{key}.period")
    lo, hi = train.get("terms", [3, 3])
    terms = int(st.number_input("Number of terms", min_value=1, max_value=12, value=int(lo), key=f"{key}.terms",
                                help=f"The models were trained on {lo}..{hi} terms."))
    coeffs, phases = [], []
    for n in range(terms):
        left, right = st.columns(2)
        coeffs.append(left.slider(f"a{n + 1}", -1.5, 1.5, _DEFAULT_COEFFS[n] if n < len(_DEFAULT_COEFFS) else 0.0,
                                  0.05, key=f"{key}.coeff{n}"))
        phases.append(right.slider(f"phase {n + 1}", -math.pi, math.pi, _DEFAULT_PHASES[n] if n < len(_DEFAULT_PHASES) else 0.0,
                                   0.05, key=f"{key}.phase{n}"))
    bias = st.slider("Bias b (adds b/2)", -1.0, 1.0, 0.0, 0.05, key=f"{key}.bias")
    trend = st.slider("Linear trend (per second)", -0.05, 0.05, 0.0, 0.001, format="%.3f", key=f"{key}.trend")
    noise = st.slider("Noise (standard deviation)", 0.0, 0.3, 0.0, 0.01, key=f"{key}.noise")
    dt = st.number_input("dt (seconds per sample)", min_value=0.001, value=float(data.get("dt", 0.02)), step=0.005,
                         format="%.3f", key=f"{key}.dt")
    length = int(st.number_input("Curve length (samples)", min_value=1, value=max(int(train.get("length", 2048)), min_length), step=100,
                                 help=f"At most {MAX_CURVE_LENGTH:,}.",
                                 key=f"{key}.length"))
    return FourierCurve(float(period), tuple(coeffs), tuple(phases), bias, trend, noise, float(dt), length)


def observation_controls(default: int = 300, key: str = "observe") -> int:
    """How many samples of the curve the model sees; 0 means 'sample from the prior'."""
    mode = st.radio("Mode", ["Continue the curve", "Sample from the prior"], horizontal=True, key=f"{key}.mode",
                    help="From the prior: nothing observed, only the period is given.")
    if mode == "Sample from the prior":
        return 0
    return int(st.number_input("Observed samples", min_value=1, value=default, step=50, key=f"{key}.n"))


def sampler_controls(horizon: int = 400, trajectories: int = 20, temperature: float = 1.0, seed: int = 0,
                     key: str = "sampler") -> SamplerSettings:
    """Horizon, number of trajectories, temperature (0 = greedy) and seed."""
    horizon = st.number_input("Horizon (steps to sample)", min_value=1, value=horizon, step=50, key=f"{key}.horizon")
    trajectories = st.number_input("Trajectories", min_value=1, value=trajectories, step=5, key=f"{key}.trajectories")
    temperature = st.slider("Temperature", 0.0, 2.0, temperature, 0.05, key=f"{key}.temperature", help="0 is greedy.")
    seed = st.number_input("Seed", min_value=0, value=seed, step=1, key=f"{key}.seed")
    return SamplerSettings(int(horizon), int(trajectories), float(temperature), int(seed))


# ---------------------------------------------------------------------------------------------------
# MNIST pages

MNIST_MODELS = ("wavenet-mnist-q2", "wavenet-mnist-q256")  # the shipped pair; other MNIST exports work too
# the best Bayes classifier shipped (wavenet-mnist-q2 fine-tuned with the classification loss): Guess's default
GUESS_MODEL = "wavenet-mnist-q2-hybrid"
CANVAS_SIZE = 280  # 10 canvas pixels per MNIST pixel
CANVAS_STROKE = 20  # about two MNIST pixels wide, like MNIST's pen


def canvas_style() -> dict:
    """st_canvas keyword arguments shared by the MNIST pages: white ink on black, a thick pen, large."""
    return dict(stroke_width=CANVAS_STROKE, stroke_color="#FFFFFF", background_color="#000000",
                height=CANVAS_SIZE, width=CANVAS_SIZE, drawing_mode="freedraw", return_image_data=True)


CANVAS_COVERED = ("The canvas is completely covered, so there is no digit to read: draw a digit in white on the "
                  "black canvas (the toolbar's bin clears it).")


def canvas_rgba(result) -> np.ndarray | None:
    """What a canvas (st_canvas result with return_image_data=True) holds as (H, W, 4) uint8 RGBA, whatever
    PNG mode it arrived in (gray, palette, ...); None before it sends anything. `result.image_data` alone
    would hand over palette indices as if they were gray levels."""
    from PIL import Image, UnidentifiedImageError

    raw = result.image_bytes
    if raw is None:
        return None
    try:
        with Image.open(io.BytesIO(raw)) as img:
            return np.asarray(img.convert("RGBA"))
    except (UnidentifiedImageError, OSError):
        raise ValueError("The canvas sent an image that cannot be read; clear it and draw again.") from None


def canvas_to_digit(rgba, size: int = 28, fit: bool = True, min_ink: float = 0.02, max_cover: float = 0.9) -> np.ndarray | None:
    """A canvas image (H, W, 4) uint8 RGBA (or (H, W) gray) -> uint8 (size, size) with 0 = background,
    255 = ink, or None when nothing is drawn (rgba None, or no pixel reaches min_ink of full ink).
    Raises ValueError (CANVAS_COVERED) when ink covers more than max_cover of the canvas: a digit never
    does, and scaled to MNIST's frame such a canvas would read as a meaningless solid block.

    The drawing is composited over black (so white ink on a black or on a transparent background both
    read as ink) and downsampled by area averaging. With fit=True it is framed the way MNIST framed its
    digits: the ink's bounding box scaled to fit 20x20 (for size 28), then placed so that its centre of
    mass sits in the middle."""
    from PIL import Image

    if rgba is None:
        return None
    a = np.asarray(rgba)
    if a.ndim == 3 and a.shape[2] in (3, 4):
        rgb = a[..., :3].astype(np.float32)
        gray = rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        if a.shape[2] == 4:
            gray = gray * (a[..., 3].astype(np.float32) / 255.0)
    elif a.ndim == 2:
        gray = a.astype(np.float32)
    else:
        raise ValueError(f"A canvas image must be (H, W, 4) RGBA or (H, W) gray, got shape {a.shape}.")
    if gray.size == 0 or gray.max() < min_ink * 255:
        return None
    if (gray >= min_ink * 255).mean() > max_cover:
        raise ValueError(CANVAS_COVERED)
    if not fit:
        img = Image.fromarray(gray.clip(0, 255).astype(np.uint8)).resize((size, size), Image.Resampling.BOX)
        return np.asarray(img, dtype=np.uint8)
    rows, cols = np.nonzero(gray >= min_ink * 255)
    crop = gray[rows.min(): rows.max() + 1, cols.min(): cols.max() + 1]
    box = max(1, round(size * 20 / 28))
    scale = box / max(crop.shape)
    h, w = max(1, round(crop.shape[0] * scale)), max(1, round(crop.shape[1] * scale))
    small = np.asarray(Image.fromarray(crop.clip(0, 255).astype(np.uint8)).resize((w, h), Image.Resampling.BOX), dtype=np.float32)
    out = np.zeros((size, size), dtype=np.float32)
    total = small.sum()
    cy, cx = ((np.arange(h) @ small.sum(1)) / total, (np.arange(w) @ small.sum(0)) / total) if total > 0 else (h / 2, w / 2)
    top = int(np.clip(round(size / 2 - 0.5 - cy), 0, size - h))
    left = int(np.clip(round(size / 2 - 0.5 - cx), 0, size - w))
    out[top: top + h, left: left + w] = small
    return out.round().clip(0, 255).astype(np.uint8)


def paint_style(image: np.ndarray) -> dict:
    """st_canvas keyword arguments for painting over a digit (uint8 (H, W)) shown large behind the canvas."""
    from PIL import Image

    backdrop = Image.fromarray(np.asarray(image, dtype=np.uint8)).resize((CANVAS_SIZE, CANVAS_SIZE), Image.Resampling.NEAREST)
    return dict(stroke_width=CANVAS_STROKE, stroke_color="rgba(220, 40, 60, 0.85)", background_image=backdrop.convert("RGB"),
                height=CANVAS_SIZE, width=CANVAS_SIZE, drawing_mode="freedraw", return_image_data=True)


def painted_mask(rgba, size: int = 28, cover: float = 0.3) -> np.ndarray | None:
    """Paint strokes (H, W, 4) RGBA on a transparent canvas -> known_mask bool (size, size), False where
    paint covers at least `cover` of a pixel's area; None when nothing is painted (or rgba is None)."""
    from PIL import Image

    if rgba is None:
        return None
    a = np.asarray(rgba)
    if a.ndim != 3 or a.shape[2] != 4:
        raise ValueError(f"A painted canvas must be (H, W, 4) RGBA, got shape {a.shape}.")
    alpha = np.asarray(Image.fromarray(a[..., 3]).resize((size, size), Image.Resampling.BOX), dtype=np.float32) / 255.0
    unknown = alpha >= cover
    return ~unknown if unknown.any() else None


def quantization_label(config: dict) -> str:
    """'Q=2 (binarized at 127)' / 'Q=256' from a config.json."""
    data = config.get("data", {})
    Q = (data.get("quantization") or {}).get("levels") or config.get("model", {}).get("quantization_levels")
    return f"Q={Q} (ink where pixel > {data.get('threshold', 127)})" if Q == 2 else f"Q={Q}"


def mnist_model_warnings(usable: dict[str, dict], unavailable: dict[str, str], root) -> None:
    """A warning for each shipped MNIST model that is missing or broken, saying how to get it; a caption
    for other unusable folders."""
    for name in MNIST_MODELS:
        if name in unavailable:
            st.warning(f"**{name}** cannot be used: {unavailable[name]}")
        elif name not in usable:
            st.warning(f"**{name}** is missing from `{root}`. Train it with "
                       f"`python train.py --config configs/{name}.json`.")
    for name, reason in unavailable.items():
        if name not in MNIST_MODELS:
            st.caption(f"**{name}** unavailable: {reason}")


def mnist_model_picker(usable: dict[str, dict], key: str = "mnist.model", prefer: str | None = None) -> str | None:
    """One MNIST model (radio, labelled by its quantization), `prefer` selected first when it is there;
    None when there is none."""
    names = sorted(usable)
    if not names:
        return None
    index = names.index(prefer) if prefer in names else 0
    return st.radio("Model", names, index=index, key=key, format_func=lambda n: f"{n} · {quantization_label(usable[n])}")


def choose_mnist_model(listing, root, key: str, needs_digits: str | None = None, prefer: str | None = None) -> tuple[str, list[str]]:
    """Warnings for missing or broken MNIST models, then the model picker in the sidebar -> (name, what
    each condition means). Stops the page when no MNIST model can be used, or, when the page
    `needs_digits` (the message says why), when the chosen model is not conditioned on the digit."""
    mnist_model_warnings(listing.usable, listing.unavailable, root)
    with st.sidebar:
        name = mnist_model_picker(listing.usable, key=key, prefer=prefer)
    if name is None:
        st.stop()
    labels = digit_labels(listing.usable[name])
    if needs_digits and not labels:
        st.error(f"{name} is not conditioned on the digit{needs_digits}")
        st.stop()
    return name, labels


def digit_labels(config: dict) -> list[str]:
    """What each condition index means, from config.json ('digit 0'..'digit 9'); [] when unconditional."""
    return list(config.get("data", {}).get("conditions") or [])


@dataclass(frozen=True)
class ImageSamplerSettings:
    digits: tuple[int, ...]
    per_digit: int
    temperature: float
    seed: int


def image_sampler_controls(num_classes: int = 10, key: str = "sample") -> ImageSamplerSettings:
    """Which digits, how many of each, temperature (0 = most likely pixel) and seed."""
    digits = st.multiselect("Digits", list(range(num_classes)), default=list(range(num_classes)), key=f"{key}.digits")
    per_digit = st.number_input("Samples per digit", min_value=1, max_value=10, value=2, key=f"{key}.per_digit")
    temperature = st.slider("Temperature", 0.0, 2.0, 1.0, 0.05, key=f"{key}.temperature", help="0 is greedy.")
    seed = st.number_input("Seed", min_value=0, value=0, step=1, key=f"{key}.seed")
    return ImageSamplerSettings(tuple(int(d) for d in digits), int(per_digit), float(temperature), int(seed))


def gallery_picker(labels: np.ndarray, key: str = "gallery") -> int:
    """A digit and which of its gallery examples -> the row in the gallery."""
    digit = st.selectbox("Digit", sorted(set(int(y) for y in labels)), index=0, key=f"{key}.digit")
    rows = np.flatnonzero(labels == digit)
    i = st.slider("Example", 1, len(rows), 1, key=f"{key}.example")
    return int(rows[i - 1])


PAINT = "Paint it on the digit"


def unknown_region_controls(height: int = 28, width: int = 28, key: str = "mask") -> np.ndarray | None:
    """What the model does not see -> known_mask bool (H, W), True = known pixel; None when the user
    chose to paint the unknown region on a canvas (the page draws it: see paint_style, painted_mask)."""
    mode = st.radio("Unknown", ["Rows below a line", "Erase a region", PAINT], key=f"{key}.mode")
    if mode == PAINT:
        return None
    known = np.ones((height, width), dtype=bool)
    if mode == "Rows below a line":
        row = st.slider("Unknown from row", 0, height - 1, height // 2, key=f"{key}.row",
                        help="Rows from this one down are unknown; the model completes them.")
        known[row:] = False
    else:
        top, bottom = st.slider("Rows", 0, height - 1, (8, 19), key=f"{key}.rows")
        left, right = st.slider("Columns", 0, width - 1, (8, 19), key=f"{key}.cols")
        known[top: bottom + 1, left: right + 1] = False
    return known


@dataclass(frozen=True)
class CompletionSettings:
    n: int
    digit: int | None  # None: any digit, drawn from p(y | known pixels before the hole)
    num_particles: int
    temperature: float
    seed: int


def completion_controls(labels: list[str], default_digit: int | None = None, key: str = "complete") -> CompletionSettings:
    """Number of completions, the digit they are conditioned on ('any' = None), particles, temperature, seed."""
    n = st.number_input("Completions", min_value=1, max_value=10, value=4, key=f"{key}.n")
    options = [None] + list(range(len(labels)))
    digit = st.selectbox("Condition on", options, index=options.index(default_digit) if default_digit in options else 0,
                         format_func=lambda d: "any digit" if d is None else labels[d], key=f"{key}.digit",
                         help="'any digit': each completion's digit is drawn from p(digit | pixels above the hole).")
    with st.expander("Sampler"):
        particles = st.number_input("Particles per completion", min_value=1, max_value=512, value=32, step=8,
                                    key=f"{key}.particles",
                                    help="Sequential Monte Carlo: more particles agree better with the known pixels below the hole.")
        temperature = st.slider("Temperature", 0.0, 2.0, 1.0, 0.05, key=f"{key}.temperature", help="0 is greedy.")
        seed = st.number_input("Seed", min_value=0, value=0, step=1, key=f"{key}.seed")
    return CompletionSettings(int(n), digit, int(particles), float(temperature), int(seed))
