"""MNIST (LeCun, Cortes and Burges, "The MNIST database of handwritten digits"), read straight from
its four idx files in torchvision's `MNIST/raw/` layout, gzipped or not. Splits: train = the first
55,000 images of the official training set, validation = its last 5,000, test = the official 10,000.
A gallery of 200 real test digits ships with the engine (`mnist_gallery.npz`, no pickles)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch

FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
SPLITS = ("train", "val", "test")
VAL_SIZE = 5000  # the last 5,000 images of the official training set
GALLERY_PATH = Path(__file__).with_name("mnist_gallery.npz")
GALLERY_PER_CLASS = 20


class MNISTNotFoundError(FileNotFoundError):
    """The idx files are not where we looked; the message says where to put them."""


def read_idx(path) -> np.ndarray:
    """One idx file (plain or gzipped, detected by its magic bytes) -> uint8 array of its shape."""
    raw = Path(path).read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path} is not an idx file of unsigned bytes (bad magic number).")
    ndim = raw[3]
    header = 4 + 4 * ndim
    shape = tuple(int(n) for n in np.frombuffer(raw[4:header], dtype=">u4"))
    data = np.frombuffer(raw, dtype=np.uint8, offset=header)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{path} is truncated: header says {shape}, found {data.size} bytes of data.")
    return data.reshape(shape)


def write_idx(path, array: np.ndarray) -> Path:
    """Write a uint8 array as an idx file (gzipped when the name ends in .gz); tests build fixtures with it."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    raw = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes() + array.tobytes()
    path = Path(path)
    path.write_bytes(gzip.compress(raw) if path.suffix == ".gz" else raw)
    return path


def _find(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def raw_folder(data_dir) -> Path | None:
    """The folder holding the idx files: data_dir itself, data_dir/MNIST/raw or data_dir/raw."""
    data_dir = Path(data_dir)
    for folder in (data_dir, data_dir / "MNIST" / "raw", data_dir / "raw"):
        if all(_find(folder, stem) for pair in FILES.values() for stem in pair):
            return folder
    return None


def _missing_message(data_dir: Path) -> str:
    names = ", ".join(f"{stem}.gz" for pair in FILES.values() for stem in pair)
    return (
        f"MNIST was not found under {data_dir}. Put the four idx files ({names}; gzipped or not) in "
        f"{data_dir / 'MNIST' / 'raw'} (torchvision's layout) or directly in {data_dir}, "
        f"or point data_dir (--data.data_dir=...) at the folder that holds them."
    )


def _try_download(data_dir: Path) -> None:
    """torchvision's download; it fails fast without internet, and then we report what is missing."""
    try:
        from torchvision.datasets import MNIST

        MNIST(str(data_dir), train=True, download=True)
    except Exception:  # no internet, no torchvision, read-only folder: all end in the same clear message
        pass


def load_split(data_dir, split: str, val_size: int = VAL_SIZE, download: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """-> images uint8 (N, 28, 28) with 0 = background, 255 = ink, labels long (N,).

    'train' is the official training set less its last `val_size` images, which form 'val';
    'test' is the official 10,000-image test set."""
    if split not in SPLITS:
        raise ValueError(f"Unknown split {split!r}; choose one of {list(SPLITS)}.")
    data_dir = Path(data_dir)
    folder = raw_folder(data_dir)
    if folder is None and download:
        _try_download(data_dir)
        folder = raw_folder(data_dir)
    if folder is None:
        raise MNISTNotFoundError(_missing_message(data_dir))
    images_stem, labels_stem = FILES["test" if split == "test" else "train"]
    images = read_idx(_find(folder, images_stem))
    labels = read_idx(_find(folder, labels_stem))
    if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
        raise ValueError(f"The idx files in {folder} do not hold matching images (N, H, W) and labels (N,).")
    if split != "test":
        if not 0 < val_size < images.shape[0]:
            raise ValueError(f"val_size must lie in 1..{images.shape[0] - 1}, got {val_size}.")
        cut = images.shape[0] - val_size
        images, labels = (images[:cut], labels[:cut]) if split == "train" else (images[cut:], labels[cut:])
    return torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64))


def load_gallery() -> tuple[torch.Tensor, torch.Tensor]:
    """The shipped gallery of real test digits: images uint8 (N, 28, 28), labels long (N,), sorted by label."""
    with np.load(GALLERY_PATH, allow_pickle=False) as f:
        return torch.from_numpy(f["images"].copy()), torch.from_numpy(f["labels"].astype(np.int64))


def make_gallery(data_dir, per_class: int = GALLERY_PER_CLASS, path=GALLERY_PATH) -> Path:
    """Write the gallery: the first `per_class` test images of each digit, with their test-set indices."""
    images, labels = load_split(data_dir, "test", download=False)
    idx = np.concatenate([np.flatnonzero(labels.numpy() == k)[:per_class] for k in range(10)])
    np.savez_compressed(path, images=images.numpy()[idx], labels=labels.numpy()[idx].astype(np.uint8), test_index=idx.astype(np.int32))
    return Path(path)


if __name__ == "__main__":  # python -m engine.data.mnist DATA_DIR: rebuild the gallery
    import sys

    print(make_gallery(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/mnist"))
