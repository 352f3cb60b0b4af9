"""Guess the digit with Bayes' rule: p(digit | pixels) from the class-conditional WaveNet's likelihoods,
live while you draw, and after every prefix of pixels in raster order."""

import time

import numpy as np
import streamlit as st

from app import components, plots, resources
from engine.image_tasks import class_posterior_by_prefix

REPLAY_SECONDS = 3.0  # the whole replay, row by row
TOOLBAR_PX = 28  # the canvas toolbar floats above the canvas

st.title("Guess the digit")
st.caption("The model scores your drawing under each digit, p(pixels | digit), and Bayes' rule turns the ten "
           "likelihoods into p(digit | pixels). Reading the pixels in raster order shows when it makes up its mind.")

listing = resources.available_models("mnist")
name, labels = components.choose_mnist_model(listing, resources.pretrained_root(), key="guess.model",
                                               needs_digits=", so it cannot tell digits apart; pick a class-conditional model.",
                                               prefer=components.GUESS_MODEL)


def posteriors(image):
    """(p(digit | first h pixels) (H*W, K) for one image, seconds it took), or (None, 0) after showing the error."""
    try:
        model = resources.load_model(name)
        started = time.perf_counter()
        by_prefix = class_posterior_by_prefix(model, image)[0].numpy()
    except ValueError as e:
        st.error(str(e))
        return None, 0.0
    return by_prefix, time.perf_counter() - started


@st.fragment
def draw_and_guess():
    from streamlit_drawable_canvas import st_canvas  # only inside a running page (NOTES.md)

    left, right = st.columns([1, 2])
    with left:
        st.space(TOOLBAR_PX)
        drawn = st_canvas(**components.canvas_style(), key="guess.canvas")
        fit = st.checkbox("Center and scale like MNIST", value=True, key="guess.fit")
    with right:
        try:
            image = components.canvas_to_digit(components.canvas_rgba(drawn), fit=fit)
        except ValueError as e:  # a covered or unreadable canvas: say so instead of guessing
            st.warning(str(e))
            return
        if image is None:
            st.info("Draw a digit on the black canvas (white ink). The guess updates after every stroke; "
                    "the toolbar's bin clears the canvas.")
            return
        by_prefix, seconds = posteriors(image)
        if by_prefix is None:
            return
        st.plotly_chart(plots.posterior_bar_figure(by_prefix[-1], labels), key="guess.bar")
        st.plotly_chart(plots.posterior_curve_figure(by_prefix, labels), key="guess.curve")
        st.caption(f"All {by_prefix.shape[0]} prefixes scored under all {by_prefix.shape[1]} digits in one forward: "
                   f"{seconds * 1000:.0f} ms on {resources.device_label()}.")
    with left:
        st.plotly_chart(plots.digit_grid_figure(image[None, None], col_titles=["what the model reads (28x28)"], scale=5),
                        key="guess.seen")


@st.fragment
def replay():
    st.subheader("Replay: a gallery digit, revealed row by row")
    images, gallery_labels = resources.mnist_gallery()
    controls, picture, charts = st.columns([1, 1, 2])
    with controls:
        row = components.gallery_picker(gallery_labels, key="guess.replay")
        play = st.button("Replay", key="guess.replay.play", type="primary")
    image = images[row]
    by_prefix, _ = posteriors(image)
    if by_prefix is None:
        return
    N, W = by_prefix.shape[0], image.shape[1]
    with picture:
        picture_slot = st.empty()
    with charts:
        bar_slot, curve_slot = st.empty(), st.empty()
    for h in range(W, N + 1, W) if play else [N]:
        seen = (np.arange(N) < h).reshape(image.shape)
        picture_slot.plotly_chart(plots.digit_grid_figure(plots.digit_rgb(image[None, None], seen, hide_unknown=True),
                                                          col_titles=[f"{h} of {N} pixels"], scale=5))
        bar_slot.plotly_chart(plots.posterior_bar_figure(by_prefix[h - 1], labels, title=f"p(digit | first {h} pixels)"))
        curve_slot.plotly_chart(plots.posterior_curve_figure(by_prefix[:h], labels, total=N))
        if play:
            time.sleep(REPLAY_SECONDS * W / N)


draw_and_guess()
st.divider()
replay()
