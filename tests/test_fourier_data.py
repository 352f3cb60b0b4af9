import numpy as np
import pytest
import torch

from engine.data.fourier import FourierParams, fourier_series, make_curves, period_to_condition


def test_series_formula():
    t = np.linspace(0, 10, 11)
    y = fourier_series(t, [1.0, 0.5], [0.0, np.pi / 2], period=5.0, bias=2.0, trend=0.1)
    expected = 1.0 + np.cos(2 * np.pi * t / 5) + 0.5 * np.cos(4 * np.pi * t / 5 + np.pi / 2) + 0.1 * t
    np.testing.assert_allclose(y, expected)


def test_determinism_and_disjoint_splits():
    p = FourierParams(num_curves=64, length=50, seed=7)
    a, ca = make_curves(p, "train")
    b, cb = make_curves(p, "train")
    assert torch.equal(a, b) and torch.equal(ca, cb)
    splits = {s: make_curves(p, s)[0] for s in ("train", "val", "test")}
    rows = {s: {tuple(np.round(v.numpy(), 5)) for v in x} for s, x in splits.items()}
    assert not rows["train"] & rows["val"] and not rows["train"] & rows["test"] and not rows["val"] & rows["test"]
    other_seed, _ = make_curves(FourierParams(num_curves=64, length=50, seed=8), "train")
    assert not torch.equal(a, other_seed)


def test_period_mapping_matches_the_curves():
    p = FourierParams(num_curves=40, length=1000, dt=0.02, periods=[5.0, 7.0], terms=(1, 1), phase_range=(0.0, 0.0))
    values, conds = make_curves(p, "train")
    assert set(conds.tolist()) == {0, 1}
    for v, c in zip(values, conds):
        period_samples = round(p.periods[c] / p.dt)
        # a single cosine term with zero phase repeats exactly after one period
        torch.testing.assert_close(v[:period_samples], v[period_samples:2 * period_samples], atol=1e-5, rtol=0)
    assert period_to_condition(7.0, p.periods) == 1
    with pytest.raises(ValueError, match="not one the model knows"):
        period_to_condition(6.0, p.periods)


def test_bad_params_are_clear_errors():
    with pytest.raises(ValueError, match="terms"):
        FourierParams(terms=(3, 1))
    with pytest.raises(ValueError, match="split"):
        make_curves(FourierParams(num_curves=2, length=4), "holdout")


def test_a_single_curve_and_its_observed_prefix():
    from engine.data.fourier import FourierCurve

    curve = FourierCurve(period=5.0, coeffs=(1.0,), phases=(0.0,), dt=0.5, length=20, noise=0.1, noise_seed=3)
    t, y = curve.values()
    assert t.shape == y.shape == (20,) and np.array_equal(y, curve.values()[1])  # seeded noise
    assert np.array_equal(curve.observed(7), y[:7])
    with pytest.raises(ValueError, match="cannot observe 21"):
        curve.observed(21)
    with pytest.raises(ValueError, match="dt > 0"):
        FourierCurve(period=5.0, coeffs=(1.0,), phases=(0.0,), dt=0.0).values()
