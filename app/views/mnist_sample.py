"""Sample MNIST digits pixel by pixel from a class-conditional image model; the grid fills in as it goes."""

import time

import streamlit as st
import torch

from app import components, plots, presets, resources, state
from engine.image_tasks import iter_sample_images

REDRAW_ROWS = 2  # redraw the grid every this many image rows
MAX_COLS = 5  # digits per row of the grid: ten would shrink to thumbnails on a projector
NAIVE_ROWS_MAX = 4  # the naive generator costs seconds per row on the CPU: a few rows make the point

PRESETS, PRESET_NOTES = presets.SAMPLE, presets.SAMPLE_NOTES
state.view("sample", PRESETS)
st.title("Sample digits")
st.caption("The model writes each digit one pixel at a time, row by row, each pixel drawn from "
           "p(pixel | pixels so far, digit). Column titles name the digit the model was asked for.")

listing = resources.available_models("mnist")
with st.sidebar:
    state.controls("sample", PRESETS, PRESET_NOTES)
name, labels = components.choose_mnist_model(listing, resources.pretrained_root(), key="mnist.model",
                                             needs_digits="; this page needs a class-conditional model.")
with st.sidebar:
    settings = components.image_sampler_controls(num_classes=len(labels))
    naive_rows = state.kept(st.slider, "Naive generator for the first rows", min_value=0, max_value=NAIVE_ROWS_MAX, value=0,
                            key="sample.naive_rows",
                            help="These rows re-run the model over the whole image so far for every pixel; then the "
                                 "fast generator takes over. Same digits, very different milliseconds per pixel.")
components.what_to_look_for(
    "- Each pixel depends only on the pixels above and to its left: watch strokes grow row by row.\n"
    "- **Temperature 0 is greedy**: the most likely pixel each time, so two samples of a digit are identical "
    "and often a smooth, average-looking shape (or a blank). Temperature 1 samples the model's own distribution.\n"
    "- **Milliseconds per pixel**: the fast generator keeps each layer's past in queues, so a pixel costs one "
    "small step, not a pass over the whole image so far. Run the first rows with the naive generator (sidebar) "
    "to feel the difference: the digits come out the same.")

if components.stopped_notice("sample", "sampling"):
    if "sample.partial" in st.session_state:  # the digits as far as they got
        cells, titles, title = st.session_state["sample.partial"]
        st.plotly_chart(plots.digit_grid_figure(cells, col_titles=titles, max_cols=MAX_COLS, title=f"{title} (stopped)"),
                        width="content")
    st.stop()
run = components.RunProgress("sample", "Sampling...")
grid, speed = st.empty(), st.empty()
try:
    model = resources.load_model(name)
    W = int(model.data_config.get("width", 28))
    steps = iter_sample_images(model, list(settings.digits), settings.per_digit, settings.temperature,
                               generator=torch.Generator().manual_seed(settings.seed),
                               every=W if naive_rows else REDRAW_ROWS * W, naive_rows=naive_rows)
    last, last_done, started = time.perf_counter(), 0, time.perf_counter()
    for done, images in steps:
        now = time.perf_counter()
        total = images.shape[1] * images.shape[2]
        rate = (now - last) / max(done - last_done, 1) * 1000
        last, last_done = now, done
        generator = "naive" if done <= naive_rows * W else "fast"
        speed.caption(f"{rate:.2f} ms per pixel ({generator} generator) for all {images.shape[0]} images at once "
                      f"({(now - started):.1f} s so far, {resources.device_label()}).")
        cells = images.numpy().reshape(len(settings.digits), settings.per_digit, *images.shape[1:]).swapaxes(0, 1)
        titles, title = [labels[d] for d in settings.digits], f"{name}: {done} of {total} pixels"
        st.session_state["sample.partial"] = (cells, titles, title)
        grid.plotly_chart(plots.digit_grid_figure(cells, col_titles=titles, max_cols=MAX_COLS, title=title), width="content")
        run.update(done / total, f"Sampling: pixel {done} of {total}")
except ValueError as e:
    st.error(str(e))
finally:
    run.done()
