"""Complete a partly hidden digit: the model fills in the unknown pixels, agreeing with the known ones
around the hole (sequential Monte Carlo over the fast generator, or exactly for a model that reads pixels
in any order)."""

import numpy as np
import streamlit as st
import torch

from app import canvas, components, plots, presets, resources, state
from engine.image_tasks import complete

GALLERY, DRAWING = presets.GALLERY, presets.DRAWING
TOOLBAR_PX = 28  # the canvas toolbar floats above the canvas
BOX_PX = canvas.CANVAS_SIZE + 20  # a canvas's box in the page: it never shrinks below the canvas

PRESETS, PRESET_NOTES = presets.COMPLETE, presets.COMPLETE_NOTES
state.view("complete", PRESETS)
st.title("Complete a digit")
st.caption("Hide part of a digit and let the model fill it in, pixel by pixel. Known pixels after the hole "
           "weigh each candidate, so completions also fit what lies below the hole.")

listing = resources.available_models("mnist")
with st.sidebar:
    state.controls("complete", PRESETS, PRESET_NOTES)
name, labels = components.choose_mnist_model(listing, resources.pretrained_root(), key="complete.model")
try:
    model = resources.load_model(name)
except ValueError as e:
    st.error(str(e))
    st.stop()
exact = bool(getattr(model, "any_order", False))  # conditions on every known pixel exactly: no particles
gallery_images, gallery_labels = resources.mnist_gallery()
with st.sidebar:
    source = state.kept(st.radio, "Start from", options=[GALLERY, DRAWING], horizontal=True, key="complete.source")
    if source == GALLERY:
        row = components.gallery_picker(gallery_labels, key="complete.gallery")
    known = components.unknown_region_controls(key="complete.mask")
    settings = components.completion_controls(labels, exact=exact, key="complete")
components.what_to_look_for(
    "- **White on black**: pixels the model is given. **Dark red**: hidden from it. **Orange on blue**: what it filled in.\n"
    "- The model writes pixels in raster order, so it sees only the known pixels *above* the hole as it goes; "
    + ("this model reads pixels in any order, so it conditions on every known pixel exactly.\n" if exact else
       "the known pixels *below* the hole are honoured by sequential Monte Carlo: each completion is chosen among "
       "`particles` candidates by how well they fit them. With 1 particle they are ignored (preset *1 vs 256 particles*).\n")
    + "- *any digit*: each completion first draws a digit from p(digit | pixels above the hole), shown in its title.\n"
    "- On your drawing the red region is hidden exactly where it is shown; nothing you drew is moved or scaled, "
    "so draw inside the grey box, MNIST's 20x20 frame.")

if source == DRAWING or known is None:
    from streamlit_drawable_canvas import st_canvas  # importing it outside a running Streamlit page raises StreamlitAPIException

    boxes = st.container(horizontal=True, wrap=True, gap="medium")
if source == GALLERY:
    image, origin = gallery_images[row], f"MNIST test · {int(gallery_labels[row])}"
else:
    with boxes.container(width=BOX_PX):
        st.caption("**1 · Draw a digit** in white" + (" above the red region." if known is not None else "."))
        st.space(TOOLBAR_PX)
        shown_hole = known if known is not None else np.ones((28, 28), dtype=bool)
        drawn = st_canvas(**canvas.hole_canvas_style(shown_hole), key="complete.canvas")
    image, origin = components.drawn_digit(drawn, False, "Draw a digit on the black canvas (white ink); the model then "
                                                          "completes its hidden part."), "your drawing"
    if image is None:  # nothing drawn, or a covered canvas: said so instead of completing a solid block
        st.stop()
if known is None:
    with boxes.container(width=BOX_PX):
        st.caption(f"**{2 if source == DRAWING else 1} · Paint** over what the model should not see.")
        st.space(TOOLBAR_PX)
        painted = st_canvas(**canvas.paint_style(image), key="complete.paint")
    try:
        known = canvas.painted_mask(canvas.canvas_rgba(painted))
    except ValueError as e:
        st.warning(str(e))
        st.stop()
    if known is None:
        st.info("Paint over the part of the digit the model should not see; it then fills that part in.")
        st.stop()

st.caption("White on black: pixels the model is given. Dark red: hidden from it. Orange on blue: filled in by the model.")
figures = st.container(horizontal=True, wrap=True, gap="medium")
shown = [[plots.digit_rgb(image), plots.digit_rgb(image, known, hide_unknown=True)]]  # one row: (1, 2, H, W, 3)
figures.plotly_chart(plots.digit_grid_figure(shown, col_titles=[origin, "input"], title="given", scale=5),
                     key="complete.input", width="content")
if components.stopped_notice("complete", "completing"):
    st.stop()
run = components.RunProgress("complete", "Completing...")
try:
    out, digits = complete(model, image, known, settings.digit, n=settings.n, num_particles=settings.num_particles,
                           temperature=settings.temperature, generator=torch.Generator().manual_seed(settings.seed),
                           progress=lambda done, total: run.update(done / total, f"Completing: pixel {done} of {total}"),
                           return_digits=True)
except ValueError as e:
    st.error(str(e))
    st.stop()
finally:
    run.done()
titles = [f"#{i + 1}" + (f" · {labels[d]}" if settings.digit is None and 0 <= d < len(labels) else "")
          for i, d in enumerate(digits.tolist())]
figures.plotly_chart(plots.digit_grid_figure(plots.digit_rgb(out.numpy()[None], known), col_titles=titles, scale=5, max_cols=4,
                                             title=f"{name}: " + ("any digit" if settings.digit is None else labels[settings.digit])),
                     key="complete.results", width="content")
