import pytest
import torch

from engine.encoding import one_hot
from engine.models.wavenet import WaveNet, WaveNetConfig


def make(dilations=(1, 2, 4, 8), kernel=2, input_kernel=3, cond=0, Q=6, seed=0):
    torch.manual_seed(seed)
    cfg = WaveNetConfig(quantization_levels=Q, residual_channels=8, skip_channels=12, head_channels=10,
                        dilations=list(dilations), kernel_size=kernel, input_kernel_size=input_kernel, cond_channels=cond)
    return WaveNet(cfg).double().eval()


@pytest.mark.parametrize("dilations,kernel,input_kernel,expected", [
    ([1, 2, 4, 8], 2, 1, 16),
    ([1, 2, 4, 8], 2, 3, 18),
    ([1, 2, 4], 3, 2, 1 + 1 + 2 * 7),
    ([2**i for i in range(9)] + [2**i for i in range(7)] + [2**i for i in range(6)], 2, 3, 704),
])
def test_receptive_field_formula(dilations, kernel, input_kernel, expected):
    cfg = WaveNetConfig(dilations=dilations, kernel_size=kernel, input_kernel_size=input_kernel)
    assert cfg.receptive_field == expected


@pytest.mark.parametrize("dilations,kernel,input_kernel", [([1, 2, 4, 8], 2, 3), ([1, 3, 1, 2], 3, 2), ([1], 2, 1)])
def test_causal_coverage_is_exactly_the_receptive_field(dilations, kernel, input_kernel):
    model = make(dilations, kernel, input_kernel)
    R = model.receptive_field
    T = R + 12
    x = torch.randn(1, model.config.quantization_levels, T, dtype=torch.double, requires_grad=True)
    logits = model(x)
    for i in [0, 3, R - 1, R, T - 1]:
        (grad,) = torch.autograd.grad(logits[0, :, i].sum(), x, retain_graph=True)
        depends = grad.abs().sum(dim=(0, 1)) > 0
        expected = torch.zeros(T, dtype=torch.bool)
        expected[max(0, i - R + 1): i + 1] = True
        assert torch.equal(depends, expected), f"output {i}: depends on {depends.nonzero().flatten().tolist()}"


def test_condition_shifts_output_and_is_validated():
    model = make(cond=3)
    x = one_hot(torch.randint(0, 6, (2, 20)), 6).double()
    a = model(x, torch.eye(3, dtype=torch.double)[[0, 0]])
    b = model(x, torch.eye(3, dtype=torch.double)[[0, 1]])
    torch.testing.assert_close(a[0], b[0])
    assert not torch.allclose(a[1], b[1])
    with pytest.raises(ValueError, match="condition"):
        model(x)
    with pytest.raises(ValueError, match="condition"):
        model(x, torch.eye(4, dtype=torch.double)[:2])


def test_bad_config_and_input_are_clear_errors():
    with pytest.raises(ValueError, match="dilations"):
        WaveNetConfig(dilations=[])
    with pytest.raises(ValueError, match="quantization_levels"):
        WaveNetConfig(quantization_levels=1)
    with pytest.raises(ValueError, match="input must have shape"):
        make()(torch.zeros(1, 5, 10, dtype=torch.double))


@pytest.mark.parametrize("kernel,input_kernel,cond,T", [(2, 3, 4, 50), (3, 1, 0, 40), (2, 2, 3, 5), (3, 4, 0, 1)])
def test_time_major_inference_path_equals_forward(kernel, input_kernel, cond, T):
    """logits_from_levels (matrix products, sigmoid-only gates, folded scales) is the same function as
    forward, also when the sequence is shorter than a layer's dilation."""
    torch.manual_seed(0)
    cfg = WaveNetConfig(quantization_levels=5, residual_channels=6, skip_channels=7, head_channels=9,
                        dilations=[1, 2, 4, 8, 16, 1, 2], kernel_size=kernel, input_kernel_size=input_kernel, cond_channels=cond)
    model = WaveNet(cfg).double().eval()
    levels = torch.randint(0, 5, (3, T), generator=torch.Generator().manual_seed(1))
    c = torch.softmax(torch.randn(3, cond, dtype=torch.double), 1) if cond else None
    expected = model(one_hot(levels, 5).double(), c).transpose(1, 2)
    got = model.logits_from_levels(levels, c)
    assert got.shape == (3, T, 5)
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)
    with pytest.raises(ValueError, match="levels"):
        model.logits_from_levels(levels[0], c)


def test_dropout_acts_in_training_only_and_is_validated():
    """Dropout changes the training forward (and differs draw to draw) but not the model the app runs:
    in eval mode, and in the inference path, it equals the same weights without dropout."""
    torch.manual_seed(0)
    kw = dict(quantization_levels=4, residual_channels=6, skip_channels=7, head_channels=5, dilations=[1, 2, 4], cond_channels=2)
    dropped = WaveNet(WaveNetConfig(**kw, dropout=0.5)).double()
    plain = WaveNet(WaveNetConfig(**kw)).double()
    plain.load_state_dict(dropped.state_dict())
    levels = torch.randint(0, 4, (3, 30), generator=torch.Generator().manual_seed(1))
    x, c = one_hot(levels, 4).double(), torch.eye(2, dtype=torch.double)[[0, 1, 1]]
    dropped.train()
    a, b = dropped(x, c), dropped(x, c)
    assert not torch.allclose(a, b)
    dropped.eval(), plain.eval()
    torch.testing.assert_close(dropped(x, c), plain(x, c))
    torch.testing.assert_close(dropped.logits_from_levels(levels, c), plain(x, c).transpose(1, 2))
    for bad in (1.0, -0.1, "0.1", True):
        with pytest.raises(ValueError, match="dropout"):
            WaveNetConfig(dropout=bad)
