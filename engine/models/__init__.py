"""Model registry: config.json's `model_type` -> (model class, config class)."""

from __future__ import annotations

from dataclasses import fields

from engine.models.gated_pixelcnn import GatedPixelCNN, GatedPixelCNNConfig
from engine.models.made import MADE, MADEConfig
from engine.models.mixture import Mixture, MixtureConfig
from engine.models.pixelcnn import PixelCNN, PixelCNNConfig
from engine.models.pixelcnnpp import PixelCNNPlusPlus, PixelCNNPlusPlusConfig
from engine.models.pixelsnail import PixelSNAIL, PixelSNAILConfig
from engine.models.transformer import CausalTransformer, CausalTransformerConfig
from engine.models.wavenet import WaveNet, WaveNetConfig

MODEL_REGISTRY = {
    "wavenet": (WaveNet, WaveNetConfig),
    "mixture": (Mixture, MixtureConfig),
    "made": (MADE, MADEConfig),
    "pixelcnn": (PixelCNN, PixelCNNConfig),
    "gated_pixelcnn": (GatedPixelCNN, GatedPixelCNNConfig),
    "pixelsnail": (PixelSNAIL, PixelSNAILConfig),
    "pixelcnnpp": (PixelCNNPlusPlus, PixelCNNPlusPlusConfig),
    "transformer": (CausalTransformer, CausalTransformerConfig),
}


def describe_model_type(model_type: str) -> tuple[str, str]:
    """A registry name -> (family name, one line on what the family is), for the app's model picker."""
    config_class(model_type)  # checks the name
    cls = MODEL_REGISTRY[model_type][0]
    return cls.family_name, cls.family_summary


def model_type_of(model) -> str:
    """The registry name of a model's class (what config.json's model_type says)."""
    for name, (cls, _) in MODEL_REGISTRY.items():
        if type(model) is cls:
            return name
    raise ValueError(f"{type(model).__name__} is not in the model registry.")


def build_config(model_type: str, config: dict):
    """The config object of a registry name from a plain dict; unknown names/keys raise ValueError."""
    config_cls = config_class(model_type)
    if not isinstance(config, dict):
        raise ValueError(f"A {config_cls.__name__} must be a JSON object, got {config!r}.")
    known = {f.name for f in fields(config_cls)}
    unknown = set(config) - known
    if unknown:
        raise ValueError(f"Unknown {config_cls.__name__} keys {sorted(unknown)}; valid keys: {sorted(known)}.")
    try:
        return config_cls(**config)
    except TypeError as e:  # a required key is missing
        raise ValueError(f"{config_cls.__name__}: {e}.") from None


def build_model(model_type: str, config: dict):
    """Build a model from its registry name and a plain config dict; unknown names/keys raise ValueError."""
    config = build_config(model_type, config)  # checks the name first
    return MODEL_REGISTRY[model_type][0](config)


def can_start_from(start, config) -> bool:
    """Whether the weights of a model of config `start` can start training a `config` model
    (train.init_from): the family of `config` decides (its `can_start_from`)."""
    for cls, config_cls in MODEL_REGISTRY.values():
        if type(config) is config_cls:
            return cls.can_start_from(start, config)
    raise ValueError(f"{type(config).__name__} is not the config of a registered family.")


def config_class(model_type: str):
    """The config dataclass of a registry name; an unknown name raises ValueError naming the known ones."""
    if model_type not in MODEL_REGISTRY:
        raise ValueError(f"Unknown model type {model_type!r}; known types: {sorted(MODEL_REGISTRY)}.")
    return MODEL_REGISTRY[model_type][1]
