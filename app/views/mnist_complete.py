"""Complete a partly hidden digit: the WaveNet fills in the unknown pixels, agreeing with the known ones
around the hole (sequential Monte Carlo over the fast generator)."""

import streamlit as st
import torch

from app import components, plots, resources
from engine.image_tasks import complete

GALLERY, DRAWING = "A gallery digit", "Your drawing"
TOOLBAR_PX = 28  # the canvas toolbar floats above the canvas

st.title("Complete a digit")
st.caption("Hide part of a digit and let the model fill it in, pixel by pixel. Known pixels after the hole "
           "weigh each candidate, so completions also fit what lies below the hole.")

listing = resources.available_models("mnist")
name, labels = components.choose_mnist_model(listing, resources.pretrained_root(), key="complete.model")
gallery_images, gallery_labels = resources.mnist_gallery()
with st.sidebar:
    source = st.radio("Start from", [GALLERY, DRAWING], horizontal=True, key="complete.source")
    if source == GALLERY:
        row = components.gallery_picker(gallery_labels, key="complete.gallery")
    known = components.unknown_region_controls(key="complete.mask")
    settings = components.completion_controls(labels, key="complete")

if source == DRAWING or known is None:
    from streamlit_drawable_canvas import st_canvas  # only inside a running page (NOTES.md)

    canvas_columns = iter(st.columns(3))
if source == GALLERY:
    image, origin = gallery_images[row], f"MNIST test · {int(gallery_labels[row])}"
else:
    with next(canvas_columns):
        st.space(TOOLBAR_PX)
        drawn = st_canvas(**components.canvas_style(), key="complete.canvas")
        fit = st.checkbox("Center and scale like MNIST", value=True, key="complete.fit")
    try:
        image, origin = components.canvas_to_digit(components.canvas_rgba(drawn), fit=fit), "your drawing"
    except ValueError as e:  # a covered or unreadable canvas: say so instead of completing a solid block
        st.warning(str(e))
        st.stop()
    if image is None:
        st.info("Draw a digit on the black canvas (white ink); the model then completes its hidden part.")
        st.stop()
if known is None:
    with next(canvas_columns):
        st.space(TOOLBAR_PX)
        painted = st_canvas(**components.paint_style(image), key="complete.paint")
    try:
        known = components.painted_mask(components.canvas_rgba(painted))
    except ValueError as e:
        st.warning(str(e))
        st.stop()
    if known is None:
        st.info("Paint over the part of the digit the model should not see; it then fills that part in.")
        st.stop()

st.caption("Gray: pixels the model is given. Dark red: hidden from it. Orange on blue: filled in by the model.")
given, results = st.columns([2, 4])
shown = [[plots.digit_rgb(image), plots.digit_rgb(image, known, hide_unknown=True)]]  # one row: (1, 2, H, W, 3)
given.plotly_chart(plots.digit_grid_figure(shown, col_titles=[origin, "input"], title="given", scale=6), key="complete.input")
bar = st.progress(0.0, text="Completing...")
try:
    model = resources.load_model(name)
    out, digits = complete(model, image, known, settings.digit, n=settings.n, num_particles=settings.num_particles,
                           temperature=settings.temperature, generator=torch.Generator().manual_seed(settings.seed),
                           progress=lambda done, total: bar.progress(done / total, text=f"Completing: pixel {done} of {total}"),
                           return_digits=True)
except ValueError as e:
    st.error(str(e))
    st.stop()
finally:
    bar.empty()
titles = [f"#{i + 1}" + (f" · {labels[d]}" if settings.digit is None and 0 <= d < len(labels) else "")
          for i, d in enumerate(digits.tolist())]
results.plotly_chart(plots.digit_grid_figure(plots.digit_rgb(out.numpy()[None], known), col_titles=titles, scale=6,
                                             title=f"{name}: " + ("any digit" if settings.digit is None else labels[settings.digit])),
                     key="complete.results")
