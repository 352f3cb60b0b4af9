"""Compare models: two to four image models of any family side by side on the same seed and digit:
sampling at the same time, completing the same partial digit, reading the same drawing, test quality
against speed (bench/compare.py's figures) and which earlier pixels one prediction depends on."""

import time

import numpy as np
import streamlit as st
import torch

from app import canvas, components, plots, presets, resources, state
from engine.dependency import dependency_method
from engine.compare import iter_sample_together
from engine.image_tasks import read_drawing

DRAW_SHARE = 0.1  # redraw only while drawing has taken at most this share of the race (a redraw costs ~40 ms)
TOOLBAR_PX = 28  # the canvas toolbar floats above the canvas
GALLERY, DRAWING = presets.GALLERY, presets.DRAWING

PRESETS, PRESET_NOTES = presets.COMPARE, presets.COMPARE_NOTES
state.view("compare", PRESETS)
st.title("Compare models")
st.caption("The same seed and the same digit for every model: watch them sample, complete and guess side by side, "
           "see what they score on the test set and how fast they are, and which pixels each prediction reads.")

listing = resources.available_models("mnist")
with st.sidebar:
    state.controls("compare", PRESETS, PRESET_NOTES)
    names = components.compare_model_picker(listing.usable)
    digit = int(state.kept(st.selectbox, "Digit", options=list(range(10)), index=7, key="compare.digit",
                           help="Every model samples, completes and is shown this digit (unconditional models ignore it)."))
    samples = state.kept(st.selectbox, "Samples per model", options=[1, 2, 4], index=2, key="compare.samples")
    temperature = state.kept(st.slider, "Temperature", min_value=0.0, max_value=2.0, value=1.0, step=0.05,
                             key="compare.temperature", help=components.TEMPERATURE_HELP)
    seed = int(state.kept(st.number_input, "Seed", min_value=0, value=0, step=1, key="compare.seed"))
for name, reason in listing.unavailable.items():
    st.caption(f"**{name}** unavailable: {reason}")
if len(names) < 2:
    st.info("Pick two to four models in the sidebar to compare them.")
    st.stop()
try:
    models = {name: resources.load_model(name) for name in names}
except ValueError as e:
    st.error(str(e))
    st.stop()
conditional = {name: bool(m.config.cond_channels) for name, m in models.items()}
gallery_images, gallery_labels = resources.mnist_gallery()
of_digit = np.flatnonzero(gallery_labels == digit)


def digit_of(name):
    return digit if conditional[name] else None


def label_of(name):
    return f"digit {digit}" if conditional[name] else "any digit (unconditional)"


# --- 1. Sampling, all models at once (engine.compare: each takes one image row in turn) -------------------------
st.subheader("1 · Sampling, pixel by pixel, at the same time")
# Finished samples are kept per session by everything that decides them, so changing one model or a later section
# races only what is new; "Race again" races every model afresh.
finished = st.session_state.setdefault("_compare_samples", {})
again = st.button("Race again", key="compare.race", icon=":material/replay:", help="Sample every chosen model again, all at once.")
settings = (digit, samples, temperature, seed)
keys = {name: (name, resources.weights_version(name), *settings) for name in names}
columns = dict(zip(names, st.columns(len(names))))
slots = {}
for name in names:
    with columns[name]:
        st.markdown(f"**{name}**")
        slots[name] = (st.empty(), st.empty())


def show(name, images, done, seconds, kept=False):
    total = images.shape[1] * images.shape[2]
    grid = images.reshape(-1, min(samples, 2), *images.shape[1:])
    picture, caption = slots[name]
    picture.plotly_chart(plots.digit_grid_figure(grid, scale=3, title=f"{done}/{total} px"), width="content",
                         key=f"compare.sample.{name}.{done}")  # unique per redraw: two blank starts look alike
    caption.caption(f"{label_of(name)} · {seconds:.2f} s of its own" + (" (sampled earlier with these settings)" if kept else ""))


partial = st.session_state.setdefault("_compare_partial", {})  # how far each model got, shown after a Stop
racing = [name for name in names if again or keys[name] not in finished]
if components.stopped_notice("compare", "the race"):
    racing = []  # the other sections still run; the race waits for "Run again" or a change
for name in names:
    if name not in racing and keys[name] in finished:
        images, seconds = finished[keys[name]]
        show(name, images, images.shape[1] * images.shape[2], seconds, kept=True)
    elif name not in racing and keys[name] in partial:
        show(name, *partial[keys[name]])
own = dict.fromkeys(racing, 0.0)
drawing, drawn = 0.0, {}  # seconds spent drawing; model -> when its first rows were on screen
run = components.RunProgress("compare", "Sampling...") if racing else None
progress = dict.fromkeys(racing, 0.0)
started = time.perf_counter()
try:
    for name, done, images, own[name] in iter_sample_together({n: models[n] for n in racing}, {n: digit_of(n) for n in racing},
                                                              samples, temperature, seed):
        total = images.shape[1] * images.shape[2]
        partial[keys[name]] = (images.numpy(), done, own[name])
        # first rows at once, the finished digits always, in between only while drawing stays a small share
        if name not in drawn or done == total or drawing <= DRAW_SHARE * (time.perf_counter() - started):
            tick = time.perf_counter()
            show(name, images.numpy(), done, own[name])
            progress[name] = done / total
            run.update(sum(progress.values()) / len(progress), f"Sampling: {min(progress.values()):.0%} of every model's pixels")
            drawing += time.perf_counter() - tick
            drawn.setdefault(name, time.perf_counter() - started)
        if done == total:
            finished[keys[name]] = (images.numpy(), own[name])
except ValueError as e:
    st.error(str(e))
finally:
    if run is not None:
        run.done()
if racing:
    wall = time.perf_counter() - started
    st.caption(f"{len(racing)} model(s) sampled at once in {wall:.1f} s on {resources.device_label()}, the first rows of each "
               f"on screen after {max(drawn.values(), default=0):.2f} s; their own times add "
               f"up to {sum(own.values()):.1f} s, drawing took {drawing:.1f} s. Each hands over to the next after every image row.")


# --- 2. Completion --------------------------------------------------------------------------------------------------
@st.fragment
def completions():
    st.subheader("2 · The same partial digit, completed by each")
    left, right = st.columns([1, 3])
    with left:
        source = state.kept(st.radio, "Start from", options=[GALLERY, DRAWING], horizontal=True, key="compare.complete.source")
        if source == GALLERY:
            example = state.kept(st.slider, f"Example of digit {digit}", min_value=1, max_value=len(of_digit), value=1,
                                 key="compare.complete.example")
        known = components.unknown_region_controls(key="compare.mask")
        n = state.kept(st.number_input, "Completions per model", min_value=1, max_value=4, value=2, key="compare.complete.n")
        particles = state.kept(st.number_input, "Particles", min_value=1, max_value=64, value=8, step=8, key="compare.complete.particles",
                               help="Sequential Monte Carlo for models that generate in one order; a model that reads pixels "
                                    "in any order conditions on every known pixel exactly and needs none.")
    with right:
        from streamlit_drawable_canvas import st_canvas  # importing it outside a running Streamlit page raises

        if source == GALLERY:
            image = gallery_images[of_digit[example - 1]]
        else:
            st.space(TOOLBAR_PX)
            drawn = st_canvas(**canvas.hole_canvas_style(known if known is not None else np.ones((28, 28), bool)),
                              key="compare.complete.canvas")
            image = components.drawn_digit(drawn, False, "Draw a digit on the canvas (white ink); every model then completes its hidden part.")
            if image is None:
                return
        if known is None:
            st.space(TOOLBAR_PX)
            painted = st_canvas(**canvas.paint_style(image), key="compare.complete.paint")
            try:
                known = canvas.painted_mask(canvas.canvas_rgba(painted))
            except ValueError as e:
                st.warning(str(e))
                return
            if known is None:
                st.info("Paint over the part of the digit the models should not see.")
                return
        given = [[plots.digit_rgb(image), plots.digit_rgb(image, known, hide_unknown=True)]]
        st.plotly_chart(plots.digit_grid_figure(given, col_titles=["digit", "given"], scale=4), key="compare.given", width="content")
    st.caption("Orange on blue: what each model filled in, conditioned on " + f"digit {digit}.")
    for name, column in zip(names, st.columns(len(names))):
        with column:
            try:
                out, seconds = resources.completion(name, image, known, digit_of(name), int(n), int(particles), seed)
            except ValueError as e:
                st.error(str(e))
                continue
            st.plotly_chart(plots.digit_grid_figure(plots.digit_rgb(out[None], known), scale=3, title=name),
                            key=f"compare.completed.{name}", width="content")
            st.caption(f"{seconds:.2f} s" + (" · exact (any order)" if models[name].any_order else f" · {particles} particles"))


# --- 3. Guess -------------------------------------------------------------------------------------------------------
@st.fragment
def guesses():
    st.subheader("3 · The same drawing, read by each")
    from streamlit_drawable_canvas import st_canvas  # importing it outside a running Streamlit page raises

    left, right = st.columns([1, 3])
    with left:
        st.space(TOOLBAR_PX)
        drawn = st_canvas(**canvas.canvas_style(), key="compare.canvas")
        fit = state.kept(st.checkbox, "Center and scale like MNIST", value=True, key="compare.fit")
    with right:
        image = components.drawn_digit(drawn, fit, "Draw a digit on the canvas; each model's p(digit | drawing) appears here, side by side.")
        if image is None:
            return
        for name, column in zip(names, st.columns(len(names))):
            with column:
                if not conditional[name]:
                    st.caption(f"**{name}** is unconditional: it cannot tell digits apart.")
                    continue
                tick = time.perf_counter()
                try:
                    by_prefix, _ = read_drawing(models[name], image)
                except ValueError as e:
                    st.error(str(e))
                    continue
                labels = components.digit_labels(listing.usable[name]) or [str(k) for k in range(by_prefix.shape[-1])]
                figure = plots.posterior_bar_figure(by_prefix[0, -1].numpy(), [label.split()[-1] for label in labels], title=name)
                st.plotly_chart(figure, key=f"compare.guess.{name}")
                st.caption(f"{(time.perf_counter() - tick) * 1000:.0f} ms")


# --- 4. Quality against speed ---------------------------------------------------------------------------------------
def quality_and_speed():
    st.subheader("4 · Test quality against speed, every shipped model")
    rows, machine = resources.measured_figures(sorted(listing.usable))
    st.plotly_chart(plots.quality_speed_figure(rows, chosen=names), key="compare.scatter")

    def shown(value, fmt):
        return "not measured" if value is None else format(value, fmt)

    st.dataframe({
        "model": [r["model"] for r in rows], "family": [r["family"] for r in rows], "Q": [str(r["Q"]) for r in rows],
        "parameters": [shown(r["parameters"], ",") for r in rows], "bits/dim": [shown(r["bits_per_dim"], ".4f") + (f" ({r['test_images']:,} digits)" if r["test_images"] not in (None, 10_000) else "")
                     for r in rows],
        "Bayes accuracy": [shown(r["bayes"], ".2%") + (f" ({r['bayes_images']:,} digits)" if r["bayes_images"] else "") for r in rows],
        "sample 10 digits (s)": [shown(r["seconds"], ".2f") for r in rows], "live posterior (s)": [shown(r["posterior_s"], ".3f") for r in rows],
        "complete (s)": [shown(r["complete_s"], ".2f") for r in rows], "status": [r["status"] for r in rows],
    }, hide_index=True, key="compare.table")
    if not machine:
        st.caption("No model measured yet: run `python bench/compare.py` (it writes bench/results/compare.json).")
        return
    st.caption(f"Measured by `python bench/compare.py` (bench/results/compare.json) on {machine.get('cpu', '?')} "
               f"({machine.get('cores', '?')} cores), {machine.get('threads', '?')} torch thread(s), 1-minute load average "
               f"{machine.get('load_1min', '?')}, {machine.get('date', '')}: bits/dim on the MNIST test digits, Bayes accuracy "
               "on the digits named, CPU seconds. Rerun it after adding a model; only new or changed weights are measured.")


# --- 5. Dependency maps ---------------------------------------------------------------------------------------------
@st.fragment
def dependencies():
    st.subheader("5 · Which earlier pixels does one prediction read?")
    components.what_to_look_for(
        "- **PixelCNN**: a blind spot. Pixels above and to the right beyond its first kernel stay blank however deep it is.\n"
        "- **Gated PixelCNN**: the vertical stack reads the whole rows above within its reach: no blind spot.\n"
        "- **WaveNet**: a 1-D receptive field over the raster sequence: the last R pixels (R under its map), wrapping "
        "around the row ends; with R of many rows, pick a pixel in the last rows to see where it ends, mid-row.\n"
        "- **MADE**: every pixel before this one in its order (raster here), near or far.\n"
        "- Blank (grey): no effect at all; colours span six powers of ten below each map's largest value. "
        "Gradient maps and perturbation maps (changing each pixel in turn) have different units: compare shapes.")
    left, right = st.columns([1, 4])
    with left:
        row = int(state.kept(st.number_input, "Row", min_value=0, max_value=27, value=14, key="compare.dep.row"))
        col = int(state.kept(st.number_input, "Column", min_value=0, max_value=27, value=14, key="compare.dep.col"))
        image = gallery_images[of_digit[0]]
        marked = plots.digit_rgb(image)
        marked[row, col] = plots.PIXEL_MARK
        st.plotly_chart(plots.digit_grid_figure(marked[None, None], col_titles=[f"pixel ({row}, {col})"], scale=5),
                        key="compare.dep.image", width="content")
    with right:
        for name, column in zip(names, st.columns(len(names))):
            with column:
                tick = time.perf_counter()
                try:
                    with st.spinner(f"Measuring {name}..."):
                        values = resources.dependency_map(name, image, row, col, digit_of(name))
                except ValueError as e:
                    st.error(str(e))
                    continue
                st.plotly_chart(plots.dependency_figure(values, row, col, title=name, scale=6), key=f"compare.dep.{name}",
                                width="content")
                field = models[name].receptive_field
                st.caption(f"{dependency_method(models[name])} · {time.perf_counter() - tick:.2f} s"
                           + (f" · R = {field} pixels" if field is not None else ""))


completions()
guesses()
quality_and_speed()
dependencies()
