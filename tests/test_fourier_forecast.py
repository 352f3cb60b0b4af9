"""The Fourier page's error over many curves (engine.tasks.forecast_error_over_curves): the batch of test
curves gives exactly the errors that forecasting each curve alone gives, and bad requests get a sentence."""

import numpy as np
import pytest
import torch

from app_models import write_models
from engine.checkpoint import load_pretrained
from engine.data.fourier import FourierParams, make_curves
from engine.tasks import forecast, forecast_error_over_curves


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    root = write_models(tmp_path_factory.mktemp("pretrained"), names=("wavenet-fourier",))
    return load_pretrained(root / "wavenet-fourier")


@pytest.mark.parametrize("n_observed", [0, 12])
def test_batched_error_equals_the_mean_of_single_greedy_forecasts(model, n_observed):
    horizon, num_curves = 9, 5
    errors = forecast_error_over_curves(model, n_observed, horizon, num_curves)
    assert errors.shape == (horizon,) and np.all(np.isfinite(errors)) and np.all(errors >= 0)
    train = model.data_config["train_params"]
    params = FourierParams(**{**{k: v for k, v in train.items() if k in FourierParams.__dataclass_fields__},
                              "num_curves": num_curves, "length": n_observed + horizon})
    values, conditions = make_curves(params, "test")
    single = [np.abs(forecast(model, values[i, :n_observed].numpy(), horizon, 1, int(conditions[i]), 0.0)[0]
                     - values[i, n_observed:].numpy()) for i in range(num_curves)]
    np.testing.assert_allclose(errors, np.mean(single, axis=0), rtol=1e-5, atol=1e-6)


def test_bad_requests_are_refused_with_a_sentence(model):
    with pytest.raises(ValueError, match="horizon"):
        forecast_error_over_curves(model, 10, 0)
    with pytest.raises(ValueError, match="num_curves"):
        forecast_error_over_curves(model, 10, 5, num_curves=10_000)
    data = dict(model.data_config)
    try:
        model.data_config = {k: v for k, v in data.items() if k != "train_params"}
        with pytest.raises(ValueError, match="train_params"):
            forecast_error_over_curves(model, 10, 5)
    finally:
        model.data_config = data
