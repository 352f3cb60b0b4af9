"""Property-based tests: whatever shape, dtype or value a caller passes, the engine's task functions
either answer correctly shaped, finite results or raise ValueError; never a crash inside torch."""

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from engine.models.wavenet import WaveNet, WaveNetConfig
from engine.tasks import class_posterior, complete, forecast, pixel_log_likelihoods, sample_images

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _mnist_model():
    torch.manual_seed(0)
    m = WaveNet(WaveNetConfig(quantization_levels=2, residual_channels=4, skip_channels=6, head_channels=6,
                              dilations=[1, 2], kernel_size=2, input_kernel_size=2, cond_channels=10)).eval()
    m.data_config = {"task": "mnist", "quantization": {"levels": 2}, "threshold": 127, "scan_order": "raster",
                     "height": 28, "width": 28, "start_value": 0, "conditions": [f"digit {d}" for d in range(10)]}
    return m


def _fourier_model():
    torch.manual_seed(0)
    m = WaveNet(WaveNetConfig(quantization_levels=16, residual_channels=4, skip_channels=6, head_channels=6,
                              dilations=[1, 2], kernel_size=2, input_kernel_size=2, cond_channels=5)).eval()
    m.data_config = {"task": "fourier", "quantization": {"levels": 16, "low": -1.6, "high": 1.6}, "periods": [5, 6, 7, 8, 9]}
    return m


MNIST, FOURIER = _mnist_model(), _fourier_model()

dtypes = st.sampled_from([np.uint8, np.int64, np.int8, np.float32, np.float64, np.bool_, np.complex64])
shapes = st.sampled_from([(28, 28), (1, 28, 28), (2, 28, 28), (28,), (0, 28, 28), (2, 27, 28), (3, 1, 28, 28), (784,)])
values = st.one_of(st.floats(allow_nan=True, allow_infinity=True, width=32), st.integers(-300, 300))


def _is_valid_image_batch(arr: np.ndarray) -> bool:
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[1:] != (28, 28) or arr.shape[0] < 1 or arr.dtype.kind in "bc":
        return False
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        return False
    return bool(arr.size and np.round(arr).min() >= 0 and np.round(arr).max() <= 255)  # float pixels are rounded first


def _filled(shape, dtype, value) -> np.ndarray:
    """An array of the given shape and dtype holding `value` (cast the way numpy casts it)."""
    with np.errstate(invalid="ignore", over="ignore"):
        return np.full(shape, value).astype(dtype)


@SETTINGS
@given(arr=st.builds(_filled, shapes, dtypes, values))
def test_image_tasks_answer_or_raise_value_error(arr):
    valid = _is_valid_image_batch(arr)
    try:
        post = class_posterior(MNIST, arr)
        ll = pixel_log_likelihoods(MNIST, arr)
    except ValueError:
        assert not valid
        return
    assert valid
    B = 1 if arr.ndim == 2 else arr.shape[0]
    assert post.shape == (B, 10) and torch.isfinite(post).all()
    torch.testing.assert_close(post.sum(1), torch.ones(B, dtype=post.dtype))
    assert ll.shape == (B, 10, 784) and (ll <= 0).all()


@SETTINGS
@given(digits=st.one_of(st.lists(st.one_of(st.integers(-3, 12), st.floats(), st.text(max_size=2)), max_size=4), st.none()),
       n=st.one_of(st.integers(-2, 3), st.floats(allow_nan=True)), temperature=st.one_of(st.floats(allow_nan=True), st.integers(-1, 3)))
def test_sampling_answers_or_raises_value_error(digits, n, temperature):
    try:
        images = sample_images(MNIST, digits, n, temperature=temperature, generator=torch.Generator().manual_seed(0))
    except ValueError:
        return
    assert all(isinstance(d, int) and 0 <= d <= 9 for d in digits) and isinstance(n, int) and n >= 1
    assert images.shape == (len(digits) * n, 28, 28) and images.dtype == torch.uint8


@SETTINGS
@given(mask_kind=st.sampled_from(["rows", "none", "all", "bad-shape", "floats"]), row=st.integers(0, 27),
       digit=st.one_of(st.none(), st.integers(-1, 10)))
def test_complete_keeps_known_pixels_or_raises(mask_kind, row, digit):
    image = np.zeros((28, 28), np.uint8)
    image[5:20, 12:16] = 255
    mask = {"rows": np.arange(784).reshape(28, 28) < row * 28, "none": np.zeros((28, 28), bool),
            "all": np.ones((28, 28), bool), "bad-shape": np.ones((27, 28), bool),
            "floats": np.full((28, 28), np.nan)}[mask_kind]
    try:
        out = complete(MNIST, image, mask, digit=digit, n=2, num_particles=4, generator=torch.Generator().manual_seed(1))
    except ValueError:
        return
    assert mask_kind in ("rows", "none", "all") and (digit is None or 0 <= digit <= 9)
    known = torch.from_numpy(mask)
    assert torch.equal(out[:, known], torch.from_numpy(image)[known].expand(2, -1))


@SETTINGS
@given(observed=hnp.arrays(np.float64, st.integers(0, 12), elements=st.floats(allow_nan=True, allow_infinity=True)),
       horizon=st.one_of(st.integers(-5, 30), st.floats(), st.just(10**6)),
       trajectories=st.one_of(st.integers(-1, 4), st.just(10**5)), condition=st.one_of(st.none(), st.integers(-1, 6)),
       temperature=st.floats(allow_nan=True, allow_infinity=True))
def test_forecast_answers_or_raises_value_error(observed, horizon, trajectories, condition, temperature):
    try:
        out = forecast(FOURIER, observed, horizon, trajectories, condition, temperature, generator=torch.Generator().manual_seed(0))
    except ValueError:
        return
    assert np.isfinite(observed).all() and isinstance(horizon, int) and 1 <= horizon and condition in range(5)
    assert out.shape == (trajectories, horizon) and np.isfinite(out).all()
    assert out.min() >= -1.6 - 1e-6 and out.max() <= 1.6 + 1e-6
