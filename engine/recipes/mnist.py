"""Training recipe for class-conditional models of MNIST pixels in raster order, after the MNIST
features of cheind/autoregressive: 784 pixels quantized to Q levels (Q=2 binarizes at a threshold),
every one of them predicted (row 0 of `log_probs` too), and the digit as the condition. Any family
trains and is scored on it through the model interface (engine/models/base.py)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from engine.data.mnist import VAL_SIZE, load_split
from engine.encoding import image_to_sequence, images_to_levels
from engine.image_tasks import score_levels

HEIGHT = WIDTH = 28
NUM_CLASSES = 10
START_VALUE = 0  # written to config.json's data as before; the models now hold their own start token
PREFIX_FRACTIONS = (0.25, 0.5, 0.75)


@dataclass
class MNISTData:
    data_dir: str = "../shared/data/mnist"  # holds MNIST/raw/*-ubyte[.gz] (torchvision's layout) or the files
    threshold: int = 127  # Q=2: ink where pixel > threshold
    val_size: int = VAL_SIZE  # the last val_size official training images are the validation split
    limit_train: int = 0  # use only the first N training images (0 = all 55,000); for smoke runs
    eval_val_images: int = 1000  # periodic validation on the first N validation images (0 = all)
    eval_test_images: int = 0  # final test evaluation on the first N test images (0 = all 10,000)
    eval_batch_images: int = 10  # images per evaluation forward (each scored under all K classes)

    def __post_init__(self):
        for name in ("threshold", "limit_train", "eval_val_images", "eval_test_images"):
            if getattr(self, name) < 0:
                raise ValueError(f"data.{name} must be >= 0, got {getattr(self, name)}.")
        if not 0 <= self.threshold <= 254:
            raise ValueError(f"data.threshold must lie in 0..254, got {self.threshold}.")
        if self.val_size < 1 or self.eval_batch_images < 1:
            raise ValueError("data.val_size and data.eval_batch_images must be >= 1.")


def quantization_rule(levels: int, threshold: int) -> str:
    if levels == 2:
        return f"binarize: ink (1) where pixel > {threshold}, else background (0)"
    if levels == 256:
        return "Q=256: raw 8-bit pixel values"
    return f"round(pixel * {levels - 1} / 255)"


def to_sequences(images: torch.Tensor, levels: int, threshold: int) -> torch.Tensor:
    """uint8 images (N, 28, 28) -> levels (N, 784) in raster order, stored as uint8 (Q <= 256)."""
    return image_to_sequence(images_to_levels(images, levels, threshold), "raster").to(torch.uint8)


@torch.no_grad()
def evaluate_mnist(model, levels: torch.Tensor, labels: torch.Tensor, batch_images: int = 10,
                   fractions: tuple[float, ...] = PREFIX_FRACTIONS) -> dict[str, float]:
    """Metrics over level sequences (N, 784) with labels (N,): teacher-forced pixel accuracy and NLL under
    the true class, and (conditional models) Bayes-rule accuracy after all pixels and after each fraction
    of them. Each batch is scored under every class in one batched forward."""
    model.eval()
    K = model.config.cond_channels
    device = next(model.parameters()).device
    N = levels.shape[1]
    horizons = [max(1, round(f * N)) for f in fractions]
    hits = nll = 0.0
    bayes = torch.zeros(1 + len(horizons))
    for s in range(0, levels.shape[0], batch_images):
        x = levels[s:s + batch_images].to(device).long()
        y = labels[s:s + batch_images].to(device)
        ll, pred = score_levels(model, x)  # (b, K, N) each
        row = y if K else torch.zeros_like(y)
        true_ll = ll[torch.arange(len(y)), row]  # (b, N)
        hits += (pred[torch.arange(len(y)), row] == x).sum().item()
        nll -= true_ll.sum().item()
        if K:
            cum = ll.cumsum(dim=-1)
            for i, h in enumerate([N] + horizons):
                bayes[i] += (cum[:, :, h - 1].argmax(dim=1) == y).sum().item()
    count = levels.shape[0]
    metrics = {
        "pixel_accuracy": hits / (count * N),
        "nll_nats_per_image": nll / count,
        "bits_per_dim": nll / count / (N * math.log(2)),
    }
    if K:
        metrics["bayes_accuracy"] = bayes[0].item() / count
        for f, b in zip(fractions, bayes[1:]):
            metrics[f"bayes_accuracy_after_{round(100 * f)}pct"] = b.item() / count
    return metrics


class MNISTRecipe:
    data_class = MNISTData

    def __init__(self, data: dict, model_config):
        self.data = MNISTData(**data)
        self.Q = model_config.quantization_levels
        self.K = model_config.cond_channels
        if self.K not in (0, NUM_CLASSES):
            raise ValueError(f"model.cond_channels must be 0 (unconditional) or {NUM_CLASSES} (the digit), got {self.K}.")
        if self.Q > 256:
            raise ValueError(f"model.quantization_levels must be at most 256 for 8-bit pixels, got {self.Q}.")
        self._splits = {}

    def split(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        """-> levels (N, 784) uint8 in raster order, labels (N,) long; read once, then cached."""
        if split not in self._splits:
            images, labels = load_split(self.data.data_dir, split, self.data.val_size)
            limit = {"train": self.data.limit_train, "val": self.data.eval_val_images, "test": self.data.eval_test_images}[split]
            if limit:
                images, labels = images[:limit], labels[:limit]
            self._splits[split] = (to_sequences(images, self.Q, self.data.threshold), labels)
        return self._splits[split]

    def batch(self, step: int, rank: int, batch_size: int, generator: torch.Generator):
        """-> levels (B, 784) long, one-hot digits (B, 10) (None if unconditional)."""
        levels, labels = self.split("train")
        idx = torch.randint(levels.shape[0], (batch_size,), generator=generator)
        return levels[idx].long(), (F.one_hot(labels[idx], NUM_CLASSES).float() if self.K else None)

    def evaluate(self, model, split: str, device) -> dict:
        levels, labels = self.split(split)
        return evaluate_mnist(model, levels, labels, self.data.eval_batch_images)

    def data_config(self) -> dict:
        """What inference needs: quantization, scan order, the start token, what each condition means."""
        return {
            "task": "mnist",
            "quantization": {"levels": self.Q, "rule": quantization_rule(self.Q, self.data.threshold)},
            "threshold": self.data.threshold,
            "scan_order": "raster",
            "height": HEIGHT,
            "width": WIDTH,
            "start_value": START_VALUE,
            "conditions": [f"digit {k}" for k in range(NUM_CLASSES)] if self.K else [],
            "pixel_values": "0 = background, 255 = ink (MNIST's convention)",
        }

    def card_data_text(self) -> str:
        d = self.data
        train = f"the first {d.limit_train}" if d.limit_train else f"the first {60000 - d.val_size:,}"
        val = f"the first {d.eval_val_images} of " if d.eval_val_images else ""
        test = f"the first {d.eval_test_images} images of " if d.eval_test_images else "all 10,000 images of "
        return (
            f"MNIST (Yann LeCun, Corinna Cortes, Christopher J.C. Burges; CC BY-SA 3.0). Train: {train} images of the "
            f"official training set; validation: {val}its last {d.val_size:,} images; test: {test}the official test set. "
            f"Each 28x28 image is read in raster order (row by row, left to right) as 784 pixels quantized to "
            f"Q={self.Q} levels ({quantization_rule(self.Q, d.threshold)}); the model predicts all 784 of them; "
            + ("the digit is the model's one-hot condition." if self.K else "the model is unconditional.")
        )
