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


@pytest.mark.parametrize("kernel,input_kernel,cond,T,grid,offset", [
    (2, 3, 4, 50, (), 0), (3, 1, 0, 40, (), 0), (2, 2, 3, 5, (), 0), (3, 4, 0, 1, (), 0),
    (2, 3, 4, 50, (6, 7), 0), (2, 3, 4, 50, (6, 7), 9), (3, 1, 0, 40, (45,), 3)])
def test_time_major_inference_path_equals_forward(kernel, input_kernel, cond, T, grid, offset):
    """logits_from_levels (matrix products, sigmoid-only gates, folded scales) is the same function as
    forward, also when the sequence is shorter than a layer's dilation, and with position biases."""
    torch.manual_seed(0)
    cfg = WaveNetConfig(quantization_levels=5, residual_channels=6, skip_channels=7, head_channels=9,
                        dilations=[1, 2, 4, 8, 16, 1, 2], kernel_size=kernel, input_kernel_size=input_kernel, cond_channels=cond,
                        position_grid=list(grid))
    model = WaveNet(cfg).double().eval()
    for table in model.position:
        torch.nn.init.normal_(table)
    levels = torch.randint(0, 5, (3, T), generator=torch.Generator().manual_seed(1))
    c = torch.softmax(torch.randn(3, cond, dtype=torch.double), 1) if cond else None
    expected = model(one_hot(levels, 5).double(), c, offset=offset).transpose(1, 2)
    got = model.logits_from_levels(levels, c, offset=offset)
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


def test_position_grid_biases_each_column_by_its_row_and_column_and_starts_as_the_plain_model():
    """position_grid [H, W]: column t reads row min(t // W, H - 1) and column t % W of per-layer tables
    that start at zero, so a new grid leaves the model's function unchanged until it is trained; it only
    shifts the outputs at the columns it is told about (no look-ahead) and is validated."""
    torch.manual_seed(0)
    kw = dict(quantization_levels=4, residual_channels=6, skip_channels=7, head_channels=5, dilations=[1, 2, 4], cond_channels=2)
    plain = WaveNet(WaveNetConfig(**kw)).double().eval()
    grid = WaveNet(WaveNetConfig(**kw, position_grid=[3, 4])).double().eval()
    missing, unexpected = grid.load_state_dict(plain.state_dict(), strict=False)
    assert sorted(missing) == ["position.0", "position.1"] and not unexpected
    assert [tuple(t.shape) for t in grid.position] == [(3, 2 * 6 * 4), (4, 2 * 6 * 4)]  # 4 layers of 2C = 12
    levels = torch.randint(0, 4, (2, 20), generator=torch.Generator().manual_seed(1))
    x, c = one_hot(levels, 4).double(), torch.eye(2, dtype=torch.double)
    torch.testing.assert_close(grid(x, c), plain(x, c), rtol=0, atol=0)

    with torch.no_grad():
        grid.position[0].normal_()
        grid.position[1].normal_()
    columns = torch.tensor([0, 5, 11, 12, 19])  # rows 0, 1, 2, 2 (clamped), 2 (clamped); columns 0, 1, 3, 0, 3
    expected = grid.position[0][[0, 1, 2, 2, 2]] + grid.position[1][[0, 1, 3, 0, 3]]
    torch.testing.assert_close(grid.position_biases(columns), expected)
    # the bias at column t enters the output at t and later ones only: earlier outputs stay the same
    before = grid(x, c)
    with torch.no_grad():
        grid.position[1][3].add_(1.0)  # columns 3, 7, 11, ... (t % 4 == 3)
    after = grid(x, c)
    torch.testing.assert_close(after[:, :, :3], before[:, :, :3], rtol=0, atol=0)
    assert not torch.allclose(after[:, :, 3], before[:, :, 3])
    for bad in ([0, 4], [2.5], "28x28", [True]):
        with pytest.raises(ValueError, match="position_grid"):
            WaveNetConfig(position_grid=bad)
