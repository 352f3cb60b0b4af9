"""Widget groups. Each draws a few widgets and returns plain values (numbers, dataclasses), so pages
read as widgets -> values -> engine call -> plot."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import streamlit as st

from app import canvas, presets
from app.state import kept
from engine.data.fourier import MAX_CURVE_LENGTH, FourierCurve
from engine.image_tasks import MAX_IMAGES, MAX_PARTICLE_ROWS
from engine.models import describe_model_type
from engine.tasks import MAX_FORECAST_STEPS, MAX_TRAJECTORIES


@dataclass(frozen=True)
class SamplerSettings:
    horizon: int
    num_trajectories: int
    temperature: float
    seed: int


TEMPERATURE_HELP = ("Divides the logits before sampling. 1: the model's own distribution. Below 1: bolder, more "
                    "typical samples. 0 is greedy: always the most likely value, so every sample with the same "
                    "past is the same (and greedy forecasts often settle into flat or repeating lines).")

# Defaults that read well on a projector: a clear fundamental with two smaller harmonics.
_DEFAULT_COEFFS = (0.8, 0.35, 0.15)
_DEFAULT_PHASES = (0.0, 1.0, -2.0)


def model_picker(usable: list[str], unavailable: dict[str, str], label: str = "Models", key: str = "models") -> list[str]:
    """Multiselect over usable models (all chosen by default); lists the unusable ones with the reason."""
    chosen = kept(st.multiselect, label, key=key, options=usable, default=usable)
    explain_models(chosen)
    for name, reason in unavailable.items():
        st.caption(f"**{name}** unavailable: {reason}")
    return chosen


# What the parts of a shipped model's name mean (wavenet-mnist-q256-wide: family, data, quantization, variant).
NAME_PARTS = {
    "q2": "Q=2: each pixel is ink or paper (binarized at 127)",
    "q256": "Q=256: each pixel is one of 256 grey levels",
    "hybrid": "also trained to tell digits apart (a classification loss), so Bayes' rule guesses better",
    "wide": "more channels per layer: better scores, slower",
    "mixture": "averages the next-pixel probabilities of several trained models",
    "unrolled": "also trained on its own samples several steps ahead, so long forecasts drift less",
}


def name_notes(name: str) -> list[str]:
    """'q256: ...', 'wide: ...' for the parts of a model's name that NAME_PARTS explains."""
    return [f"*{part}*: {NAME_PARTS[part]}" for part in name.split("-") if part in NAME_PARTS]


def family_line(config: dict) -> str:
    """'**WaveNet**: dilated causal ...' from config.json's model_type; '' for a type this engine lacks."""
    try:
        family, summary = describe_model_type(config.get("model_type", ""))
    except ValueError:
        return ""
    return f"**{family}**: {summary}"


def explain_models(names, configs: dict[str, dict] | None = None) -> None:
    """A caption per model: its family's one line (when configs are given) and what its name says."""
    for name in names:
        parts = ([family_line(configs[name])] if configs and name in configs else []) + name_notes(name)
        if parts:
            st.caption(f"`{name}`: " + " · ".join(p for p in parts if p))


METRIC_NAMES = {
    "pixel_accuracy": ("next-pixel accuracy (test)", "%"),
    "nll_nats_per_image": ("negative log-likelihood", "nats per image"),
    "bits_per_dim": ("negative log-likelihood", "bits per pixel"),
    "bayes_accuracy": ("digit guessed right (Bayes' rule, test)", "%"),
    "bayes_accuracy_after_25pct": ("... after the first 25 % of pixels", "%"),
    "bayes_accuracy_after_50pct": ("... after the first 50 % of pixels", "%"),
    "bayes_accuracy_after_75pct": ("... after the first 75 % of pixels", "%"),
    "teacher_forced_accuracy": ("next value exactly right (test)", "%"),
    "rolling_origin_accuracy_8": ("8-step greedy forecasts exactly right", "%"),
    "mae_h1": ("mean absolute error, 1 step ahead", "signal units"),
    "mae_h8": ("mean absolute error, 8 steps ahead", "signal units"),
    "mae_h32": ("mean absolute error, 32 steps ahead", "signal units"),
    "mae_h128": ("mean absolute error, 128 steps ahead", "signal units"),
}


def metrics_table(configs: dict[str, dict]) -> dict[str, list[str]]:
    """{'metric': [...], 'unit': [...], model: [...]} with readable metric names and units (fractions as
    percentages), from each model's config.json metrics; for st.table."""
    keys = [k for k in dict.fromkeys(k for c in configs.values() for k in c.get("metrics", {}))]
    table = {"metric": [METRIC_NAMES.get(k, (k, ""))[0] for k in keys], "unit": [METRIC_NAMES.get(k, ("", ""))[1] for k in keys]}
    for name, config in configs.items():
        metrics = config.get("metrics", {})

        def shown(k):
            v = metrics.get(k)
            if v is None:
                return ""
            return f"{100 * v:.2f}" if METRIC_NAMES.get(k, ("", ""))[1] == "%" else f"{v:.4g}"

        table[name] = [shown(k) for k in keys]
    return table


def fourier_curve_controls(data: dict, min_length: int = 0, key: str = "curve") -> FourierCurve:
    """Every parameter of the curve, with defaults from a model's config.json `data` section; the
    default length is at least `min_length`, so the default forecast can be compared with the truth."""
    train = data.get("train_params", {})
    periods = [float(p) for p in data.get("periods") or []]
    if periods:
        period = kept(st.selectbox, "Period (the model's condition)", options=periods, index=len(periods) // 2,
                      format_func=lambda p: f"{p:g} s", key=f"{key}.period")
    else:
        period = kept(st.number_input, "Period (s)", min_value=0.1, value=6.0, step=0.5, key=f"{key}.period")
    lo, hi = train.get("terms", [3, 3])
    terms = int(kept(st.number_input, "Number of terms", min_value=1, max_value=12, value=int(lo), key=f"{key}.terms",
                     help=f"The models were trained on {lo}..{hi} terms."))
    coeffs, phases = [], []
    for n in range(terms):
        left, right = st.columns(2)
        with left:
            coeffs.append(kept(st.slider, f"a{n + 1}", min_value=-1.5, max_value=1.5, step=0.05, key=f"{key}.coeff{n}",
                               value=_DEFAULT_COEFFS[n] if n < len(_DEFAULT_COEFFS) else 0.0))
        with right:
            phases.append(kept(st.slider, f"phase {n + 1}", min_value=-math.pi, max_value=math.pi, step=0.05, key=f"{key}.phase{n}",
                               value=_DEFAULT_PHASES[n] if n < len(_DEFAULT_PHASES) else 0.0))
    bias = kept(st.slider, "Bias b (adds b/2)", min_value=-1.0, max_value=1.0, value=0.0, step=0.05, key=f"{key}.bias")
    trend = kept(st.slider, "Linear trend (per second)", min_value=-0.05, max_value=0.05, value=0.0, step=0.001, format="%.3f",
                 key=f"{key}.trend")
    noise = kept(st.slider, "Noise (standard deviation)", min_value=0.0, max_value=0.3, value=0.0, step=0.01, key=f"{key}.noise")
    dt = kept(st.number_input, "dt (seconds per sample)", min_value=0.001, value=float(data.get("dt", 0.02)), step=0.005,
              format="%.3f", key=f"{key}.dt")
    length = int(kept(st.number_input, "Curve length (samples)", min_value=1, max_value=MAX_CURVE_LENGTH,
                      value=max(int(train.get("length", 2048)), min_length), step=100, key=f"{key}.length",
                      help=f"At most {MAX_CURVE_LENGTH:,}: the whole curve is computed and plotted."))
    return FourierCurve(float(period), tuple(coeffs), tuple(phases), bias, trend, noise, float(dt), length)


def observation_controls(default: int = 300, key: str = "observe") -> int:
    """How many samples of the curve the model sees; 0 means 'sample from the prior'."""
    mode = kept(st.radio, "Mode", options=["Continue the curve", "Sample from the prior"], horizontal=True, key=f"{key}.mode",
                help="From the prior: nothing observed, only the period is given.")
    if mode == "Sample from the prior":
        return 0
    return int(kept(st.number_input, "Observed samples", min_value=1, value=default, step=50, key=f"{key}.n"))


def sampler_controls(horizon: int = 400, trajectories: int = 20, temperature: float = 1.0, seed: int = 0,
                     key: str = "sampler") -> SamplerSettings:
    """Horizon, number of trajectories, temperature (0 = greedy) and seed."""
    horizon = kept(st.number_input, "Horizon (steps to sample)", min_value=1, max_value=MAX_FORECAST_STEPS, value=horizon,
                   step=50, key=f"{key}.horizon", help=f"At most {MAX_FORECAST_STEPS:,} steps.")
    trajectories = kept(st.number_input, "Trajectories", min_value=1, max_value=MAX_TRAJECTORIES, value=trajectories, step=5,
                        key=f"{key}.trajectories", help=f"At most {MAX_TRAJECTORIES}.")
    temperature = kept(st.slider, "Temperature", min_value=0.0, max_value=2.0, value=temperature, step=0.05,
                       key=f"{key}.temperature", help=TEMPERATURE_HELP)
    seed = kept(st.number_input, "Seed", min_value=0, value=seed, step=1, key=f"{key}.seed",
                help="The same seed gives the same samples every time.")
    return SamplerSettings(int(horizon), int(trajectories), float(temperature), int(seed))


# ---------------------------------------------------------------------------------------------------
# MNIST pages

MNIST_MODELS = ("wavenet-mnist-q2", "wavenet-mnist-q256")  # the shipped pair; other MNIST exports work too
# the best Bayes classifier shipped (wavenet-mnist-q2 fine-tuned with the classification loss): Guess's default
GUESS_MODEL = presets.GUESS_MODEL


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
    """One image model of any family (radio, labelled by its quantization), `prefer` selected first when it
    is there, with its family's one line and what its name means below; None when there is none."""
    names = sorted(usable)
    if not names:
        return None
    index = names.index(prefer) if prefer in names else 0
    name = kept(st.radio, "Model", options=names, index=index, key=key,
                format_func=lambda n: f"{n} · {quantization_label(usable[n])}")
    explain_models([name], usable)
    return name


def choose_mnist_model(listing, root, key: str, needs_digits: str | None = None,
                       prefer: str | None = MNIST_MODELS[0]) -> tuple[str, list[str]]:
    """Warnings for missing or broken MNIST models, then the model picker in the sidebar -> (name, what
    each condition means); `prefer` is the model selected first (default: the shipped Q=2 WaveNet, whatever
    other families sort before it). Stops the page when no MNIST model can be used, or, when the page
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
    """Which digits (never none: an emptied choice falls back to all), how many of each (digits x samples
    <= the engine's cap), temperature (0 = greedy) and seed."""
    digits = kept(st.multiselect, "Digits", options=list(range(num_classes)), default=list(range(num_classes)),
                  key=f"{key}.digits", help="Empty means every digit.")
    digits = digits or list(range(num_classes))
    per_digit = kept(st.number_input, "Samples per digit", min_value=1, max_value=max(1, min(10, MAX_IMAGES // len(digits))),
                     value=2, key=f"{key}.per_digit")
    temperature = kept(st.slider, "Temperature", min_value=0.0, max_value=2.0, value=1.0, step=0.05,
                       key=f"{key}.temperature", help=TEMPERATURE_HELP)
    seed = kept(st.number_input, "Seed", min_value=0, value=0, step=1, key=f"{key}.seed",
                help="The same seed gives the same digits every time.")
    return ImageSamplerSettings(tuple(int(d) for d in digits), int(per_digit), float(temperature), int(seed))


def gallery_picker(labels: np.ndarray, key: str = "gallery") -> int:
    """A digit and which of its gallery examples -> the row in the gallery."""
    digit = kept(st.selectbox, "Digit", options=sorted(set(int(y) for y in labels)), index=0, key=f"{key}.digit")
    rows = np.flatnonzero(labels == digit)
    i = kept(st.slider, "Example", min_value=1, max_value=len(rows), value=1, key=f"{key}.example")
    return int(rows[i - 1])


PAINT = "Paint it on the digit"


def unknown_region_controls(height: int = 28, width: int = 28, key: str = "mask") -> np.ndarray | None:
    """What the model does not see -> known_mask bool (H, W), True = known pixel; None when the user
    chose to paint the unknown region on a canvas (the page draws it: see canvas.paint_style, painted_mask)."""
    mode = kept(st.radio, "Unknown", options=["Rows below a line", "Erase a region", PAINT], key=f"{key}.mode")
    if mode == PAINT:
        return None
    known = np.ones((height, width), dtype=bool)
    if mode == "Rows below a line":
        row = kept(st.slider, "Unknown from row", min_value=0, max_value=height - 1, value=height // 2, key=f"{key}.row",
                   help="Rows from this one down are unknown; the model completes them.")
        known[row:] = False
    else:
        top, bottom = kept(st.slider, "Rows", min_value=0, max_value=height - 1, value=(8, 19), key=f"{key}.rows")
        left, right = kept(st.slider, "Columns", min_value=0, max_value=width - 1, value=(8, 19), key=f"{key}.cols")
        known[top: bottom + 1, left: right + 1] = False
    return known


@dataclass(frozen=True)
class CompletionSettings:
    n: int
    digit: int | None  # None: any digit, drawn from p(y | known pixels before the hole)
    num_particles: int
    temperature: float
    seed: int


def completion_controls(labels: list[str], exact: bool = False, key: str = "complete") -> CompletionSettings:
    """Number of completions, the digit they are conditioned on ('any' = None), particles (completions x
    particles <= the engine's cap; none for a model that conditions on all known pixels exactly, `exact`),
    temperature, seed."""
    n = int(kept(st.number_input, "Completions", min_value=1, max_value=10, value=4, key=f"{key}.n"))
    options = [None] + list(range(len(labels)))
    digit = kept(st.selectbox, "Condition on", options=options, index=0, key=f"{key}.digit",
                 format_func=lambda d: "any digit" if d is None else labels[d],
                 help="'any digit': each completion's digit is drawn from p(digit | pixels above the hole).")
    with st.expander("Sampler"):
        if exact:
            particles = 1
            st.caption("This model conditions on every known pixel exactly (it can read the pixels in any order), "
                       "so it needs no particles.")
        else:
            cap = MAX_PARTICLE_ROWS // n
            particles = kept(st.number_input, "Particles per completion", min_value=1, max_value=cap, value=min(32, cap), step=8,
                             key=f"{key}.particles",
                             help=f"Sequential Monte Carlo: more particles agree better with the known pixels below the hole "
                                  f"(at most {cap} with {n} completions: {MAX_PARTICLE_ROWS} rows in all).")
        temperature = kept(st.slider, "Temperature", min_value=0.0, max_value=2.0, value=1.0, step=0.05,
                           key=f"{key}.temperature", help=TEMPERATURE_HELP)
        seed = kept(st.number_input, "Seed", min_value=0, value=0, step=1, key=f"{key}.seed")
    return CompletionSettings(n, digit, int(particles), float(temperature), int(seed))


def what_to_look_for(text: str) -> None:
    """The page's short guide to what its charts show, folded so it does not push the charts down."""
    with st.expander("What to look for", icon=":material/visibility:"):
        st.markdown(text)


class RunProgress:
    """A long run's progress bar with a Stop button under it. Pressing Stop interrupts the run (Streamlit
    reruns the page at once) and the page's next run shows where it stopped (`stopped_notice`) instead of
    starting again; any other change starts a fresh run. `done()` clears both when the run ends, also
    after an error, so no bar is left hanging."""

    def __init__(self, page: str, text: str):
        self.page = page
        self.bar = st.progress(0.0, text=text)
        self.stop = st.empty()
        st.session_state[f"{page}.progress"] = text
        self.stop.button("Stop", key=f"{page}.stop", icon=":material/stop_circle:", on_click=_mark_stopped, args=(page,),
                         help="Stop this run and keep what it has done so far.")

    def update(self, fraction: float, text: str) -> None:
        self.bar.progress(min(max(fraction, 0.0), 1.0), text=text)
        st.session_state[f"{self.page}.progress"] = text

    def done(self) -> None:
        self.bar.empty()
        self.stop.empty()  # (the progress text stays: a Stop's callback runs after this, in the next run)


def _mark_stopped(page: str) -> None:
    st.session_state[f"{page}.stopped"] = st.session_state.get(f"{page}.progress") or "before it began"


def stopped_notice(page: str, what: str = "the run") -> bool:
    """Whether the page's last run was stopped with its Stop button; if so, says where (once) and offers
    to run again. The page then shows what it kept and stops."""
    where = st.session_state.pop(f"{page}.stopped", None)
    if where is None:
        return False
    st.info(f"Stopped {what} at: {where.rstrip('.')}. Change a setting or press **Run again** to start over.")
    st.button("Run again", key=f"{page}.again", icon=":material/replay:")
    return True


# ---------------------------------------------------------------------------------------------------
# Compare models

MAX_COMPARED = 4


def default_comparison(usable: dict[str, dict], prefer: str = MNIST_MODELS[0], count: int = MAX_COMPARED) -> list[str]:
    """Up to `count` models of different families: `prefer` first when it is there, then per other model type
    its Q=2 model with the shortest name; more of the same type only when there are fewer types."""
    def level(name):
        return (usable[name].get("data", {}).get("quantization") or {}).get("levels", 0)

    ranked = sorted(usable, key=lambda n: (n != prefer, level(n) != 2, len(n), n))
    chosen, types = [], set()
    for name in ranked:
        kind = usable[name].get("model_type")
        if kind not in types:
            chosen.append(name)
            types.add(kind)
    chosen += [n for n in ranked if n not in chosen]
    return chosen[:count]


def compare_model_picker(usable: dict[str, dict], key: str = "compare.models") -> list[str]:
    """Two to four image models of any family and Q (multiselect), each with its family's line below."""
    names = sorted(usable)
    chosen = kept(st.multiselect, f"Models (2 to {MAX_COMPARED})", options=names, default=default_comparison(usable),
                  max_selections=MAX_COMPARED, key=key, format_func=lambda n: f"{n} · {quantization_label(usable[n])}")
    explain_models(chosen, usable)
    return list(chosen)


def drawn_digit(drawn, fit: bool, empty: str) -> np.ndarray | None:
    """A canvas result as a 28x28 digit (app.canvas.canvas_to_digit), or None after saying why not: a warning
    for an unreadable or covered canvas, `empty` when nothing is drawn yet."""
    try:
        image = canvas.canvas_to_digit(canvas.canvas_rgba(drawn), fit=fit)
    except ValueError as e:
        st.warning(str(e))
        return None
    if image is None:
        st.info(empty)
    return image
