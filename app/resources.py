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
from engine.models import describe_model_type

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


# ---------------------------------------------------------------------------------------------------
# Compare models

def compare_results_path() -> Path:
    """bench/results/compare.json (bench/compare.py writes it), or the file AR_COMPARE_RESULTS names (tests)."""
    return Path(os.environ.get("AR_COMPARE_RESULTS") or ROOT / "bench" / "results" / "compare.json")


@st.cache_data(show_spinner=False, max_entries=64)
def _weights_sha256(path: str, mtime: float) -> str:
    """The key bench/compare.py files its entries under (its weights_sha256)."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@st.cache_data(show_spinner=False, max_entries=4)
def _compare_results(path: str, mtime: float) -> dict:
    import json

    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}


def measured_figures(names) -> tuple[list[dict], dict]:
    """What bench/compare.py measured for each model NAME: ([{"model", "family", "Q", "parameters",
    "bits_per_dim", "nll", "bayes", "bayes_images", "test_images", "seconds", "posterior_s", "complete_s",
    "status"}], the machine of the first measured entry); a model missing from the file, or measured on other
    weights than its folder holds now (sha256), has None figures and says so in "status"."""
    path = compare_results_path()
    results = _compare_results(str(path), path.stat().st_mtime if path.is_file() else 0.0)
    rows, machine = [], {}
    for name in names:
        entry = results.get("models", {}).get(name) or {}
        cpu = entry.get("cpu") or {}
        weights = pretrained_root() / name / WEIGHTS_NAME
        current = weights.is_file() and entry.get("sha256") == _weights_sha256(str(weights), weights.stat().st_mtime)
        config = read_config(pretrained_root() / name)
        try:
            family = describe_model_type(config.get("model_type", ""))[0]
        except ValueError:
            family = config.get("model_type", "?")
        row = {"model": name, "family": family,
               "Q": (config.get("data", {}).get("quantization") or {}).get("levels", "?"), "parameters": entry.get("parameters"),
               "bits_per_dim": None, "nll": None, "bayes": None, "bayes_images": None, "test_images": None, "seconds": None,
               "posterior_s": None, "complete_s": None,
               "status": "measured" if current and cpu else ("not measured (its weights changed since)" if cpu else "not measured")}
        if row["status"] == "measured":
            test, bayes, sec = cpu.get("test") or {}, cpu.get("bayes") or {}, cpu.get("seconds") or {}
            row.update(bits_per_dim=test.get("bits_per_dim"), nll=test.get("nll_nats_per_image"), test_images=test.get("images"),
                       bayes=bayes.get("accuracy"), bayes_images=bayes.get("images"), seconds=sec.get("sample_10_digits_s"),
                       posterior_s=sec.get("class_posterior_by_prefix_1_image_s"), complete_s=sec.get("complete_bottom_half_n4_p32_s"))
            machine = machine or cpu.get("measured_with", {})
        rows.append(row)
    return rows, machine


@st.cache_data(show_spinner=False, max_entries=256)
def _dependency_map(name: str, root: str, weights_mtime: float, image: np.ndarray, row: int, col: int, digit) -> np.ndarray:
    from engine.dependency import dependency_map as measure

    return measure(load_model(name), image, row, col, digit).numpy()


def dependency_map(name: str, image: np.ndarray, row: int, col: int, digit: int | None) -> np.ndarray:
    """engine.dependency.dependency_map of model NAME, computed once per weights file, image, pixel and digit."""
    weights = pretrained_root() / name / WEIGHTS_NAME
    return _dependency_map(name, str(pretrained_root()), weights.stat().st_mtime if weights.is_file() else 0.0,
                           np.asarray(image, dtype=np.uint8), row, col, digit)


@st.cache_data(show_spinner=False, max_entries=64)
def _completion(name: str, root: str, weights_mtime: float, image: np.ndarray, known: np.ndarray, digit, n: int,
                particles: int, seed: int) -> tuple[np.ndarray, float]:
    import time

    from engine.image_tasks import complete

    started = time.perf_counter()
    out = complete(load_model(name), image, known, digit, n=n, num_particles=particles, generator=torch.Generator().manual_seed(seed))
    return out.numpy(), time.perf_counter() - started


def completion(name: str, image: np.ndarray, known: np.ndarray, digit: int | None, n: int, particles: int,
               seed: int) -> tuple[np.ndarray, float]:
    """engine.image_tasks.complete by model NAME at temperature 1 (seeded, so the same inputs give the same
    completions: computed once) -> (uint8 (n, H, W), seconds it took when computed)."""
    weights = pretrained_root() / name / WEIGHTS_NAME
    return _completion(name, str(pretrained_root()), weights.stat().st_mtime if weights.is_file() else 0.0,
                       np.asarray(image, dtype=np.uint8), np.asarray(known, dtype=bool), digit, n, particles, seed)


def weights_version(name: str) -> float:
    """When model NAME's weights file last changed (0 when absent): part of a key for results computed from it."""
    weights = pretrained_root() / name / WEIGHTS_NAME
    return weights.stat().st_mtime if weights.is_file() else 0.0
