"""Autoregressive models you can touch: WaveNet (van den Oord et al. 2016) with fast queue
generation (Paine et al. 2016), n-step unrolled training, Fourier and MNIST tasks, and mixtures of
such models (an ensemble that averages their next-value probabilities).

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
