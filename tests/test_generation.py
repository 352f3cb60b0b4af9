"""WaveNet's fast generation (engine/models/wavenet_fast.py) against the naive generator and the full
forward. The models here read windows without a start token (start_value=None, as the Fourier
forecasters do), so a prefix is the input sequence itself: column t of the full forward predicts t+1."""

import itertools

import pytest
import torch
import torch.nn.functional as F

import engine.models.wavenet_fast as wavenet_fast
from engine.encoding import one_hot
from engine.generation import generate_fast, generate_naive
from engine.models.wavenet import WaveNet, WaveNetConfig
from engine.models.wavenet_fast import FastState
from engine.sampling import greedy, temperature_sampler


def make(cond=0, kernel=2, input_kernel=3, dilations=(1, 2, 4, 8, 1, 2), seed=0, grid=(), start=None):
    torch.manual_seed(seed)
    cfg = WaveNetConfig(quantization_levels=7, residual_channels=8, skip_channels=16, head_channels=12,
                        dilations=list(dilations), kernel_size=kernel, input_kernel_size=input_kernel, cond_channels=cond,
                        position_grid=list(grid), start_value=start)
    model = WaveNet(cfg).eval()
    for table in model.position:  # trained-looking position biases, not the zero start
        torch.nn.init.normal_(table)
    return model


def rollout(gen, model, prefix, sampler, cond, steps):
    steps_ = list(itertools.islice(gen(model, prefix, sampler, cond), steps))
    return torch.stack([s.sample for s in steps_], 1), torch.stack([s.logits for s in steps_], 1)


# grid (5, 6): 30 positions, so rollouts of up to R + 7 + 60 columns also run past the grid (last row clamped),
# and prefixes longer than R make both generators cut a window from the middle of the sequence.
@pytest.mark.parametrize("grid", [(), (5, 6)])
@pytest.mark.parametrize("cond_channels", [0, 3])
@pytest.mark.parametrize("kernel,input_kernel", [(2, 3), (3, 1)])
def test_fast_equals_naive_equals_full_forward_over_60_greedy_steps(cond_channels, kernel, input_kernel, grid):
    model = make(cond_channels, kernel, input_kernel, grid=grid)
    R = model.receptive_field
    g = torch.Generator().manual_seed(1)
    cond = torch.eye(3)[[0, 2, 1]] if cond_channels else None
    for T0 in sorted({1, 2, 3, R - 1, R, R + 1, R + 7}):
        prefix = torch.randint(0, 7, (3, T0), generator=g)
        fs, fl = rollout(generate_fast, model, prefix, greedy, cond, 60)
        ns, nl = rollout(generate_naive, model, prefix, greedy, cond, 60)
        torch.testing.assert_close(fl, nl, rtol=1e-4, atol=1e-5)
        assert torch.equal(fs, ns)
        full = F.log_softmax(model(one_hot(torch.cat([prefix, fs], 1), 7), cond), dim=1)  # (B, Q, T0 + 60)
        torch.testing.assert_close(fl, full[:, :, T0 - 1: T0 - 1 + 60].transpose(1, 2), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("grid", [(), (5, 6)])
@pytest.mark.parametrize("cond_channels", [0, 3])
@pytest.mark.parametrize("kernel,input_kernel", [(2, 3), (3, 1), (2, 7)])
def test_fast_with_level_inputs_equals_naive_and_full_forward(cond_channels, kernel, input_kernel, grid, monkeypatch):
    """generate_fast feeds levels through an embedding_bag input layer (FastState.use_levels) when Q x
    input kernel is large (Fourier); forced here on the small model, it matches as the one-hot path does."""
    monkeypatch.setattr(wavenet_fast, "USE_LEVELS_MIN", 0)
    test_fast_equals_naive_equals_full_forward_over_60_greedy_steps(cond_channels, kernel, input_kernel, grid)
    model = make(cond_channels, kernel, input_kernel, grid=grid)
    cond = torch.eye(3)[[2, 0]] if cond_channels else None
    prefix = torch.randint(0, 7, (2, 9), generator=torch.Generator().manual_seed(4))
    fs, _ = rollout(generate_fast, model, prefix, temperature_sampler(1.0, torch.Generator().manual_seed(1)), cond, 30)
    ns, _ = rollout(generate_naive, model, prefix, temperature_sampler(1.0, torch.Generator().manual_seed(1)), cond, 30)
    assert torch.equal(fs, ns)


def test_use_levels_refuses_soft_inputs():
    model = make()
    x = torch.softmax(torch.randn(2, 7, 12), dim=1)  # soft columns, as in n-step training
    logits, inputs = model(x, None, return_layer_inputs=True)
    with pytest.raises(ValueError, match="one-hot"):
        FastState.from_forward(model, inputs, logits, None).use_levels()


def test_fast_matches_full_forward_for_every_prefix_length():
    model = make(cond=2)
    seq = torch.randint(0, 7, (2, 40), generator=torch.Generator().manual_seed(3))
    cond = torch.eye(2)
    full = F.log_softmax(model(one_hot(seq, 7), cond), dim=1)
    for T0 in range(1, 40):
        step = next(generate_fast(model, seq[:, :T0], greedy, cond))
        torch.testing.assert_close(step.logits, full[:, :, T0 - 1], rtol=1e-4, atol=1e-5)


def test_packed_head_without_autograd_equals_the_addmm_head_used_with_autograd(monkeypatch):
    """FastState runs the skip/head projections as packed oneDNN linears when no gradient is needed
    (CPU generation) and as addmm otherwise (n-step training): both give the same logits."""
    monkeypatch.setattr(wavenet_fast, "PACK_MIN_WEIGHTS", 0)  # pack even this tiny model's head
    model = make(cond=3)
    seq = torch.randint(0, 7, (4, 30), generator=torch.Generator().manual_seed(5))
    cond = torch.eye(3)[[0, 1, 2, 0]]
    x = one_hot(seq, 7)
    logits = {}
    for grad in (False, True):
        with torch.set_grad_enabled(grad):
            full, inputs = model(x[:, :, :20], cond, return_layer_inputs=True)
            state = FastState.from_forward(model, inputs, full, cond)
            logits[grad] = torch.stack([state.step(x[:, :, t]) for t in range(20, 30)], 1).detach()
    torch.testing.assert_close(logits[False], logits[True], rtol=1e-5, atol=1e-5)
    reference = model(x, cond)[:, :, 20:30].transpose(1, 2)
    torch.testing.assert_close(logits[False], reference, rtol=1e-4, atol=1e-5)


def test_identical_rows_are_primed_once_and_still_diverge_like_the_naive_generator():
    """N trajectories from one observed prefix share one priming forward; their queues must still be
    separate (the rows diverge under sampling exactly as the naive generator's do)."""
    model = make(cond=3)
    row = torch.randint(0, 7, (1, 25), generator=torch.Generator().manual_seed(7))
    prefix, cond = row.expand(5, -1), torch.eye(3)[[1] * 5]
    fs, fl = rollout(generate_fast, model, prefix, temperature_sampler(1.0, torch.Generator().manual_seed(2)), cond, 40)
    ns, nl = rollout(generate_naive, model, prefix, temperature_sampler(1.0, torch.Generator().manual_seed(2)), cond, 40)
    assert torch.equal(fs, ns)
    torch.testing.assert_close(fl, nl, rtol=1e-4, atol=1e-5)
    assert len({tuple(r.tolist()) for r in fs}) > 1  # the trajectories did diverge


def test_repeated_rows_are_primed_once_per_distinct_row_and_equal_a_full_priming(monkeypatch):
    """Completion particles share one drawn prefix but carry different digits: prime() runs its forward on
    the distinct (prefix, condition) rows only and copies their queues; the state, and what it generates,
    equal a priming of every row."""
    model = make(cond=3)
    g = torch.Generator().manual_seed(3)
    rows = torch.randint(0, 7, (2, 20), generator=g)
    pick = torch.tensor([0, 1, 0, 0, 1, 1, 0, 1])
    window, cond = rows[pick], torch.eye(3)[[2, 0, 2, 1, 0, 0, 2, 0]]  # 3 distinct (row, digit) pairs
    forwarded = []
    real_forward = WaveNet.forward
    monkeypatch.setattr(WaveNet, "forward", lambda self, x, c=None, **kw: forwarded.append(x.shape[0]) or real_forward(self, x, c, **kw))
    state = wavenet_fast.prime(model, window, cond)
    assert forwarded == [3]
    full = FastState.from_forward(model, *reversed(real_forward(model, one_hot(window, 7), cond, return_layer_inputs=True)), cond)
    torch.testing.assert_close(state.logits, full.logits, rtol=1e-5, atol=1e-6)
    for a, b in zip(state.rings, full.rings):
        for x, y in zip(a, b):
            assert (x is None) == (y is None)
            if x is not None:
                torch.testing.assert_close(x, y, rtol=1e-5, atol=1e-6)
    fs, fl = rollout(generate_fast, model, window, temperature_sampler(1.0, torch.Generator().manual_seed(4)), cond, 30)
    ns, nl = rollout(generate_naive, model, window, temperature_sampler(1.0, torch.Generator().manual_seed(4)), cond, 30)
    assert torch.equal(fs, ns)
    torch.testing.assert_close(fl, nl, rtol=1e-4, atol=1e-5)


def test_seeded_sampling_is_reproducible_and_model_is_untouched():
    model = make(cond=3)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    prefix = torch.zeros(4, 1, dtype=torch.long)
    cond = torch.eye(3)[[0, 1, 2, 0]]
    a, _ = rollout(generate_fast, model, prefix, temperature_sampler(1.0, torch.Generator().manual_seed(5)), cond, 30)
    b, _ = rollout(generate_fast, model, prefix, temperature_sampler(1.0, torch.Generator().manual_seed(5)), cond, 30)
    assert torch.equal(a, b)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not list(model.buffers())


def test_interleaved_generators_do_not_share_state():
    """Two callers stepping the same model alternately get what each would get alone."""
    model = make()
    p1 = torch.randint(0, 7, (2, 5), generator=torch.Generator().manual_seed(1))
    p2 = torch.randint(0, 7, (2, 9), generator=torch.Generator().manual_seed(2))
    alone1, _ = rollout(generate_fast, model, p1, greedy, None, 20)
    alone2, _ = rollout(generate_fast, model, p2, greedy, None, 20)
    g1, g2 = generate_fast(model, p1, greedy), generate_fast(model, p2, greedy)
    s1, s2 = [], []
    for _ in range(20):
        s1.append(next(g1).sample)
        s2.append(next(g2).sample)
    assert torch.equal(torch.stack(s1, 1), alone1)
    assert torch.equal(torch.stack(s2, 1), alone2)


def test_bad_prefix_is_a_clear_error():
    model = make()
    with pytest.raises(ValueError, match="levels must lie"):
        next(generate_fast(model, torch.full((1, 3), 9), greedy))
    with pytest.raises(ValueError, match="shape"):
        next(generate_fast(model, torch.zeros(1, 2, 3, dtype=torch.long), greedy))
    with pytest.raises(ValueError, match="integer"):
        next(generate_fast(model, torch.zeros(1, 3), greedy))


def test_without_a_start_token_the_first_value_is_uniform_and_then_the_queues_prime_from_it():
    model = make(cond=3)
    cond = torch.eye(3)[[0, 2]]
    seq = torch.randint(0, 7, (2, 12), generator=torch.Generator().manual_seed(6))
    state = model.start(torch.zeros(2, 0, dtype=torch.long), cond)
    torch.testing.assert_close(state.log_probs, torch.full((2, 7), -torch.log(torch.tensor(7.0)).item()))
    full = F.log_softmax(model(one_hot(seq, 7), cond), dim=1)
    for t in range(11):
        torch.testing.assert_close(state.step(seq[:, t]), full[:, :, t], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("grid", [(), (5, 6)])
def test_with_a_start_token_the_model_reads_it_before_the_prefix(grid):
    """The MNIST WaveNets: start(prefix) stands where a forward over [start, prefix] stands, and row t of
    log_probs is that forward's column t."""
    model = make(cond=3, grid=grid, start=2)
    cond = torch.eye(3)[[1, 0]]
    seq = torch.randint(0, 7, (2, 40), generator=torch.Generator().manual_seed(8))
    full = F.log_softmax(model(one_hot(torch.cat([torch.full((2, 1), 2), seq], 1), 7), cond), dim=1)
    torch.testing.assert_close(model.log_probs(seq, cond), full[:, :, :40].transpose(1, 2), rtol=1e-4, atol=1e-5)
    for T0 in (0, 1, 5, model.receptive_field + 3):
        state = model.start(seq[:, :T0], cond)
        torch.testing.assert_close(state.log_probs, full[:, :, T0], rtol=1e-4, atol=1e-5)
