"""Everything the app caches, in one place: loaded models (shared by all sessions, read-only) and the
listing of pretrained folders. Pages never touch st.cache_* themselves."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import streamlit as st
import torch

from engine.checkpoint import WEIGHTS_NAME, list_pretrained, load_pretrained, read_config

ROOT = Path(__file__).resolve().parents[1]
DEVICE = "cpu"  # the samplers draw with a CPU torch.Generator; the demo models are small


def pretrained_root() -> Path:
    """pretrained/ at the repo root, or the folder named by AR_PRETRAINED_DIR (tests, development)."""
    return Path(os.environ.get("AR_PRETRAINED_DIR") or ROOT / "pretrained")


def device_label() -> str:
    return f"{DEVICE}, torch threads: {torch.get_num_threads()}" if DEVICE == "cpu" else DEVICE


@dataclass(frozen=True)
class ModelListing:
    usable: dict[str, dict]  # name -> config.json of models for the task
    unavailable: dict[str, str]  # name -> why it cannot be used


@st.cache_data(ttl=10, show_spinner=False)
def _list_models(root: str, task: str) -> ModelListing:
    usable, unavailable = {}, {}
    for name, problem in list_pretrained(root).items():
        if problem is not None:  # unreadable config: its task is unknown, so every page reports it
            unavailable[name] = problem
            continue
        config = read_config(Path(root) / name)
        if config.get("data", {}).get("task") != task:
            continue
        if not (Path(root) / name / WEIGHTS_NAME).is_file():
            unavailable[name] = f"no {WEIGHTS_NAME} in {Path(root) / name}"
        else:
            usable[name] = config
    return ModelListing(usable, unavailable)


def available_models(task: str) -> ModelListing:
    """Models under the pretrained root whose config.json says data.task == task, plus the folders
    that cannot be used and why. Re-read every few seconds, so freshly exported models appear."""
    return _list_models(str(pretrained_root()), task)


@st.cache_resource(show_spinner="Loading model...", max_entries=16)
def _load(path: str, weights_mtime: float):
    return load_pretrained(path, device=DEVICE)


def load_model(name: str):
    """The model in pretrained/NAME, loaded once and shared by all sessions (it holds no generation
    state). Reloaded when its weights file changes. Raises ValueError with the reason if it cannot load."""
    path = pretrained_root() / name
    weights = path / WEIGHTS_NAME
    mtime = weights.stat().st_mtime if weights.is_file() else 0.0
    return _load(str(path), mtime)


@st.cache_data(show_spinner=False)
def mnist_gallery():
    """The shipped gallery of 200 real MNIST test digits: images uint8 (N, 28, 28), labels int (N,)."""
    from engine.data.mnist import load_gallery

    images, labels = load_gallery()
    return images.numpy(), labels.numpy()


@st.cache_data(show_spinner="Scoring the gallery's real digits...", max_entries=16)
def _gallery_log_likelihoods(name: str, root: str, weights_mtime: float) -> np.ndarray:
    images, _ = mnist_gallery()
    from engine.image_tasks import image_log_likelihood

    return image_log_likelihood(load_model(name), images[::2]).numpy()  # 10 of each digit: enough for the range, one call


def gallery_log_likelihoods(name: str) -> np.ndarray:
    """log p(image) of 100 of the gallery's real test digits (10 per digit) under model NAME, computed once
    per weights file."""
    weights = pretrained_root() / name / WEIGHTS_NAME
    return _gallery_log_likelihoods(name, str(pretrained_root()), weights.stat().st_mtime if weights.is_file() else 0.0)
