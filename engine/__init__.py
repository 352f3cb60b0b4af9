"""Autoregressive models you can touch, every family behind one interface (engine/models/base.py:
teacher-forced log-probs, a per-call generation state, declared capabilities): WaveNet (van den Oord
et al. 2016) with fast queue generation (Paine et al. 2016) and n-step unrolled training, mixtures of
models (an ensemble that averages their next-value probabilities), and the Fourier and MNIST tasks.

Tensor sizes use one vocabulary throughout:
    B batch, T time, C channels, Q quantization levels, R receptive field,
    H, W image size, K classes (conditions), O rolling origins.
"""

from engine.checkpoint import list_pretrained, load_pretrained, save_pretrained
from engine.models import MODEL_REGISTRY, build_model
from engine.models.mixture import Mixture, MixtureConfig
from engine.models.wavenet import WaveNet, WaveNetConfig

__all__ = [
    "MODEL_REGISTRY",
    "Mixture",
    "MixtureConfig",
    "WaveNet",
    "WaveNetConfig",
    "build_model",
    "list_pretrained",
    "load_pretrained",
    "save_pretrained",
]
