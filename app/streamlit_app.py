"""Entrypoint: page config, the shared sidebar and the page list. Nothing else lives here.

    streamlit run app/streamlit_app.py
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `streamlit run` puts app/ on the path, not the repo root with engine/
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from app import resources  # noqa: E402

st.set_page_config(page_title="Autoregressive models", page_icon=":material/timeline:", layout="wide")

# Titles and order live here; add a page with one line. Material icons render without emoji fonts.
PAGES = {
    "Time series": [
        st.Page("views/fourier_forecast.py", title="Fourier forecast", icon=":material/show_chart:", default=True),
    ],
    "Images (MNIST)": [
        st.Page("views/mnist_sample.py", title="Sample digits", icon=":material/casino:"),
        st.Page("views/mnist_complete.py", title="Complete a digit", icon=":material/extension:"),
        st.Page("views/mnist_guess.py", title="Guess the digit", icon=":material/draw:"),
        st.Page("views/compare.py", title="Compare models", icon=":material/compare:"),
    ],
}

with st.sidebar:
    st.markdown("**Autoregressive models you can touch**: trained on Fourier series and MNIST digits, "
                "sampled one step at a time. Every setting is in the URL: copy it to reopen this view.")
    st.caption(f"Device: {resources.device_label()} · models from `{resources.pretrained_root()}`")

st.navigation(PAGES).run()
