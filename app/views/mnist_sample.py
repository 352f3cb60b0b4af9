"""Sample MNIST digits pixel by pixel from a class-conditional WaveNet; the grid fills in as it goes."""

import streamlit as st
import torch

from app import components, plots, resources
from engine.image_tasks import iter_sample_images

REDRAW_ROWS = 2  # redraw the grid every this many image rows

st.title("Sample digits")
st.caption("The model writes each digit one pixel at a time, row by row, each pixel drawn from "
           "p(pixel | pixels so far, digit). Column titles name the digit the model was asked for.")

listing = resources.available_models("mnist")
name, labels = components.choose_mnist_model(listing, resources.pretrained_root(), key="mnist.model",
                                               needs_digits="; this page needs a class-conditional model.")
with st.sidebar:
    settings = components.image_sampler_controls(num_classes=len(labels))

bar = st.progress(0.0, text="Sampling...")
grid = st.empty()
try:
    model = resources.load_model(name)
    W = int(model.data_config.get("width", 28))
    steps = iter_sample_images(model, list(settings.digits), settings.per_digit, settings.temperature,
                               generator=torch.Generator().manual_seed(settings.seed), every=REDRAW_ROWS * W)
    for done, images in steps:
        total = images.shape[1] * images.shape[2]
        bar.progress(done / total, text=f"Sampling: pixel {done} of {total}")
        cells = images.numpy().reshape(len(settings.digits), settings.per_digit, *images.shape[1:]).swapaxes(0, 1)
        grid.plotly_chart(plots.digit_grid_figure(cells, col_titles=[labels[d] for d in settings.digits],
                                                  title=f"{name}: {done} of {total} pixels"))
except ValueError as e:
    st.error(str(e))
finally:
    bar.empty()
