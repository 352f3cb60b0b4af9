"""Guess the digit with Bayes' rule: p(digit | pixels) from the class-conditional model's likelihoods,
live while you draw, and after every prefix of pixels in raster order."""

import time

import numpy as np
import streamlit as st

from app import canvas, components, plots, presets, resources, state
from engine.image_tasks import read_drawing

REPLAY_SECONDS = 3.0  # the whole replay, row by row, drawing included
TOOLBAR_PX = 28  # the canvas toolbar floats above the canvas
BOX_PX = canvas.CANVAS_SIZE + 10  # the canvas's box in the page: it never shrinks below the canvas
CHARTS_PX = 480  # beside the canvas from 1280 px wide, below it on narrower screens

PRESETS, PRESET_NOTES = presets.GUESS, presets.GUESS_NOTES
state.view("guess", PRESETS)
st.title("Guess the digit")
st.caption("The model scores your drawing under each digit, p(pixels | digit), and Bayes' rule turns the ten "
           "likelihoods into p(digit | pixels). Reading the pixels in raster order shows when it makes up its mind.")

listing = resources.available_models("mnist")
with st.sidebar:
    state.controls("guess", PRESETS, PRESET_NOTES)
name, labels = components.choose_mnist_model(listing, resources.pretrained_root(), key="guess.model",
                                             needs_digits=", so it cannot tell digits apart; pick a class-conditional model.",
                                             prefer=components.GUESS_MODEL)
components.what_to_look_for(
    "- **p(digit | drawing)** always sums to 1, even for a scribble: it says which digit explains the pixels "
    "*best*, not whether they look like a digit at all.\n"
    "- **How digit-like** answers that: the drawing's log-likelihood among those of real test digits. A drawing "
    "far to the left of the dots is unlike any digit the model knows, whatever the bars say.\n"
    "- **p(digit | first pixels)**: the guess after reading the first pixels in raster order; the replay below "
    "shows when the model makes up its mind, often only in the lower rows (a 4 and a 9 share their top).\n"
    "- Q=256 models judge grey levels too: the canvas's strokes are framed and anti-aliased like MNIST's "
    "(\"Center and scale like MNIST\"); without it a drawing reads very differently.")


def posteriors(image):
    """(p(digit | first h pixels) (H*W, K) for one image, its log-likelihood, seconds it took) from one
    forward, or (None, None, 0) after showing the error."""
    try:
        model = resources.load_model(name)
        started = time.perf_counter()
        by_prefix, log_likelihood = read_drawing(model, image)
    except ValueError as e:
        st.error(str(e))
        return None, None, 0.0
    return by_prefix[0].numpy(), float(log_likelihood[0]), time.perf_counter() - started


@st.fragment
def draw_and_guess():
    from streamlit_drawable_canvas import st_canvas  # importing it outside a running Streamlit page raises StreamlitAPIException

    boxes = st.container(horizontal=True, wrap=True, gap="small")
    left = boxes.container(width=BOX_PX)
    right = boxes.container(width=CHARTS_PX)
    with left:
        st.space(TOOLBAR_PX)
        drawn = st_canvas(**canvas.canvas_style(), key="guess.canvas")
        fit = state.kept(st.checkbox, "Center and scale like MNIST", value=True, key="guess.fit",
                         help="Fit the ink into a 20x20 box and centre it by its centre of mass in 28x28, as MNIST was made.")
    with right:
        image = components.drawn_digit(drawn, fit, "Draw a digit on the black canvas (white ink). The guess updates after "
                                                   "every stroke; the toolbar's bin clears the canvas.")
        if image is None:  # nothing drawn, or a covered canvas: said so instead of guessing
            return
        by_prefix, drawing_ll, seconds = posteriors(image)
        if by_prefix is None:
            return
        st.plotly_chart(plots.posterior_bar_figure(by_prefix[-1], labels), key="guess.bar")
        try:
            reference = resources.gallery_log_likelihoods(name)
        except ValueError as e:
            st.error(str(e))
            return
        st.plotly_chart(plots.likelihood_figure(reference, drawing_ll), key="guess.likelihood")
        if drawing_ll < reference.min():
            st.warning(f"Less likely than every one of the {len(reference)} real test digits: the model finds this "
                       "unlike any digit, whatever the bars say.")
        st.plotly_chart(plots.posterior_curve_figure(by_prefix, labels), key="guess.curve")
        st.caption(f"All {by_prefix.shape[0]} prefixes scored under all {by_prefix.shape[1]} digits in one forward: "
                   f"{seconds * 1000:.0f} ms on {resources.device_label()}.")
    with left:
        st.plotly_chart(plots.digit_grid_figure(image[None, None], col_titles=["what the model reads (28x28)"], scale=8),
                        key="guess.seen", width="content")


@st.fragment
def replay():
    st.subheader("Replay: a gallery digit, revealed row by row")
    images, gallery_labels = resources.mnist_gallery()
    boxes = st.container(horizontal=True, wrap=True, gap="medium")
    controls, picture, charts = boxes.container(width=220), boxes.container(width=180), boxes.container(width=CHARTS_PX)
    with controls:
        row = components.gallery_picker(gallery_labels, key="guess.replay")
        play = st.button("Replay", key="guess.replay.play", type="primary",
                         help=f"Reveals the digit row by row in about {REPLAY_SECONDS:g} s.")
    image = images[row]
    by_prefix, _, _ = posteriors(image)
    if by_prefix is None:
        return
    N, W = by_prefix.shape[0], image.shape[1]
    with picture:
        picture_slot = st.empty()
    with charts:
        bar_slot, curve_slot = st.empty(), st.empty()
    frames = range(W, N + 1, W) if play else [N]
    started = time.perf_counter()
    for i, h in enumerate(frames, start=1):
        seen = (np.arange(N) < h).reshape(image.shape)
        picture_slot.plotly_chart(plots.digit_grid_figure(plots.digit_rgb(image[None, None], seen, hide_unknown=True),
                                                          col_titles=[f"{h} of {N} pixels"], scale=5), width="content")
        bar_slot.plotly_chart(plots.posterior_bar_figure(by_prefix[h - 1], labels, title=f"p(digit | first {h} pixels)"))
        curve_slot.plotly_chart(plots.posterior_curve_figure(by_prefix[:h], labels, total=N))
        if play:  # sleep only what drawing left of this frame's share, so the replay takes the time it says
            time.sleep(max(0.0, started + REPLAY_SECONDS * i / len(frames) - time.perf_counter()))


draw_and_guess()
st.divider()
replay()
