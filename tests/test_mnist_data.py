"""MNIST idx reading, the folder layouts we accept, the 55k/5k/10k split rule, the missing-data
message and the shipped gallery; all on small idx fixtures written here (no full dataset needed)."""

import numpy as np
import pytest
import torch

from engine.data import mnist
from engine.data.mnist import FILES, MNISTNotFoundError, load_gallery, load_split, read_idx, write_idx


def write_fixture(folder, n_train=30, n_test=12, gz=True, seed=0):
    """Random 28x28 'digits' in the four idx files; returns the arrays written."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train": (rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8), rng.integers(0, 10, n_train, dtype=np.uint8)),
        "test": (rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8), rng.integers(0, 10, n_test, dtype=np.uint8)),
    }
    suffix = ".gz" if gz else ""
    for split, (images, labels) in arrays.items():
        write_idx(folder / (FILES[split][0] + suffix), images)
        write_idx(folder / (FILES[split][1] + suffix), labels)
    return arrays


@pytest.mark.parametrize("name", ["a-idx3-ubyte", "a-idx3-ubyte.gz"])
def test_idx_round_trip_plain_and_gzipped(tmp_path, name):
    x = np.arange(2 * 3 * 5, dtype=np.uint8).reshape(2, 3, 5)
    path = write_idx(tmp_path / name, x)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == name.endswith(".gz")
    y = read_idx(path)
    assert y.dtype == np.uint8 and y.shape == (2, 3, 5)
    assert np.array_equal(x, y)
    labels = np.array([3, 1, 4, 1, 5], dtype=np.uint8)
    assert np.array_equal(read_idx(write_idx(tmp_path / ("l" + name), labels)), labels)


def test_idx_header_is_big_endian(tmp_path):
    path = write_idx(tmp_path / "x", np.zeros((300, 2), dtype=np.uint8))
    raw = path.read_bytes()
    assert raw[:4] == bytes([0, 0, 8, 2])
    assert raw[4:8] == (300).to_bytes(4, "big") and raw[8:12] == (2).to_bytes(4, "big")


def test_corrupt_idx_files_raise_value_error(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x00\x00\x0d\x01\x00\x00\x00\x01\x00")
    with pytest.raises(ValueError, match="magic"):
        read_idx(tmp_path / "bad")
    good = write_idx(tmp_path / "good", np.zeros((4, 28, 28), dtype=np.uint8)).read_bytes()
    (tmp_path / "short").write_bytes(good[:-10])
    with pytest.raises(ValueError, match="truncated"):
        read_idx(tmp_path / "short")


@pytest.mark.parametrize("gz", [True, False])
def test_splits_from_torchvision_layout_and_from_the_raw_folder(tmp_path, gz):
    arrays = write_fixture(tmp_path / "MNIST" / "raw", n_train=30, n_test=12, gz=gz)
    for data_dir in (tmp_path, tmp_path / "MNIST" / "raw"):
        train = load_split(data_dir, "train", val_size=8, download=False)
        val = load_split(data_dir, "val", val_size=8, download=False)
        test = load_split(data_dir, "test", val_size=8, download=False)
        images, labels = arrays["train"]
        # train = the first N - val_size official training images, val = the last val_size
        assert torch.equal(train[0], torch.from_numpy(images[:22])) and torch.equal(train[1], torch.from_numpy(labels[:22]).long())
        assert torch.equal(val[0], torch.from_numpy(images[22:])) and torch.equal(val[1], torch.from_numpy(labels[22:]).long())
        assert torch.equal(test[0], torch.from_numpy(arrays["test"][0]))
        assert train[0].dtype == torch.uint8 and train[1].dtype == torch.long
        assert test[0].shape == (12, 28, 28)


def test_bad_split_and_val_size(tmp_path):
    write_fixture(tmp_path, n_train=10)
    with pytest.raises(ValueError, match="Unknown split"):
        load_split(tmp_path, "validation", download=False)
    for val_size in (0, 10, 11):
        with pytest.raises(ValueError, match="val_size"):
            load_split(tmp_path, "train", val_size=val_size, download=False)


def test_missing_data_says_where_to_put_which_files(tmp_path, monkeypatch):
    tried = []
    monkeypatch.setattr(mnist, "_try_download", lambda d: tried.append(d))  # no network in tests
    with pytest.raises(MNISTNotFoundError) as info:
        load_split(tmp_path / "nowhere", "train")
    assert tried == [tmp_path / "nowhere"]
    assert isinstance(info.value, FileNotFoundError)
    message = str(info.value)
    assert str(tmp_path / "nowhere" / "MNIST" / "raw") in message
    for stem in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        assert stem in message
    assert "data_dir" in message


def test_an_incomplete_folder_counts_as_missing(tmp_path):
    write_fixture(tmp_path)
    (tmp_path / (FILES["test"][1] + ".gz")).unlink()
    with pytest.raises(MNISTNotFoundError, match="t10k-labels-idx1-ubyte"):
        load_split(tmp_path, "train", download=False)


def test_gallery_has_20_real_digits_per_class_without_pickles():
    with np.load(mnist.GALLERY_PATH, allow_pickle=False) as f:
        assert set(f.files) == {"images", "labels", "test_index"}
        assert all(f[k].dtype != object for k in f.files)
    images, labels = load_gallery()
    assert images.dtype == torch.uint8 and images.shape == (200, 28, 28)
    assert labels.dtype == torch.long and torch.equal(labels.bincount(minlength=10), torch.full((10,), 20))
    ink = (images > 127).flatten(1).sum(1)
    assert ink.min() >= 20  # every image holds a drawn digit
    assert images.max() == 255 and images.min() == 0
    assert (mnist.GALLERY_PATH.parent / "MNIST_GALLERY.md").read_text().count("CC BY-SA 3.0") >= 1
