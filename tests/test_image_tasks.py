"""Image tasks on tiny random WaveNets with a data_config attached: scan order, batched per-class
likelihoods, Bayes posteriors, sampling, SMC completion (checked against exact enumeration on a
4-pixel 'image') and input validation."""

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from engine.encoding import one_hot
from engine.models.wavenet_fast import FastState
from engine.image_tasks import (
    MAX_IMAGES,
    class_posterior,
    class_posterior_by_prefix,
    complete,
    decode_levels,
    encode_images,
    iter_sample_images,
    pixel_log_likelihoods,
    sample_images,
    score_levels,
)
from engine.models.wavenet import WaveNet, WaveNetConfig
from engine.training import teacher_forced


def data_config(Q, K, H=28, W=28, start=0):
    return {"task": "mnist", "quantization": {"levels": Q, "rule": "test"}, "threshold": 127, "scan_order": "raster",
            "height": H, "width": W, "start_value": start, "conditions": [f"digit {k}" for k in range(K)]}


def tiny(Q=2, K=10, H=28, W=28, start=0, seed=0, dilations=(1, 2, 4, 8), sharpen=1.0, grid=()):
    torch.manual_seed(seed)
    model = WaveNet(WaveNetConfig(quantization_levels=Q, residual_channels=8, skip_channels=16, head_channels=16,
                                  dilations=list(dilations), kernel_size=2, input_kernel_size=3, cond_channels=K,
                                  position_grid=list(grid), start_value=start)).eval()
    with torch.no_grad():
        for table in model.position:  # strong position biases, so a wrong column would show
            table.normal_(0.0, 2.0)
        model.head_out.weight.mul_(sharpen)
        for layer in model.layers:  # a strong condition, so classes differ visibly
            if layer.cond is not None:
                layer.cond.weight.mul_(sharpen)
    model.data_config = data_config(Q, K, H, W, start)
    return model


def digits(n=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    images = torch.zeros(n, 28, 28, dtype=torch.uint8)
    images[:, 6:22, 8:20] = torch.randint(0, 256, (n, 16, 12), generator=g, dtype=torch.uint8)
    return images


def gen(seed):
    return torch.Generator().manual_seed(seed)


def test_scan_order_round_trip():
    images = digits(3)
    m256 = tiny(Q=256)
    levels = encode_images(m256, images)
    assert levels.shape == (3, 784) and levels.dtype == torch.long
    assert torch.equal(levels[1, 28 * 7: 28 * 8], images[1, 7].long())  # raster: row by row
    assert torch.equal(decode_levels(m256, levels), images)
    m2 = tiny(Q=2)
    assert torch.equal(decode_levels(m2, encode_images(m2, images)), torch.where(images > 127, 255, 0).to(torch.uint8))
    assert torch.equal(encode_images(m2, images[0].numpy()), encode_images(m2, images[:1]))  # (H, W) numpy works


@pytest.mark.parametrize("Q,start", [(2, 0), (5, 3)])
def test_batched_class_log_likelihoods_equal_separate_forwards(Q, start):
    model = tiny(Q=Q, K=4, start=start)
    images = digits(3)
    ll = pixel_log_likelihoods(model, images)
    assert ll.shape == (3, 4, 784)
    x = encode_images(model, images)
    inputs = torch.cat([torch.full((3, 1), start), x[:, :-1]], dim=1)
    for k in range(4):
        logits = model(one_hot(inputs, Q), F.one_hot(torch.full((3,), k), 4).float())
        expected = F.log_softmax(logits, dim=1).gather(1, x[:, None]).squeeze(1)
        torch.testing.assert_close(ll[:, k], expected)
    # the first pixel is scored too (from the start token alone)
    first = F.log_softmax(model(one_hot(torch.full((1, 1), start), Q), torch.eye(4)[:1]), dim=1)[0, x[0, 0], 0]
    torch.testing.assert_close(ll[0, 0, 0], first)


def test_unconditional_model_scores_one_row_and_refuses_classification():
    model = tiny(K=0)
    ll, pred = score_levels(model, encode_images(model, digits(2)))
    assert ll.shape == pred.shape == (2, 1, 784)
    with pytest.raises(ValueError, match="unconditional"):
        class_posterior(model, digits(1))


def test_posteriors_sum_to_one_and_full_horizon_equals_class_posterior():
    model = tiny(K=10, sharpen=3.0)
    images = digits(4)
    post = class_posterior(model, images)
    by_prefix = class_posterior_by_prefix(model, images)
    assert post.shape == (4, 10) and by_prefix.shape == (4, 784, 10)
    torch.testing.assert_close(post.sum(1), torch.ones(4))
    torch.testing.assert_close(by_prefix.sum(2), torch.ones(4, 784))
    torch.testing.assert_close(by_prefix[:, -1], post)
    ll = pixel_log_likelihoods(model, images)
    torch.testing.assert_close(by_prefix[:, 99], torch.softmax(ll[:, :, :100].sum(-1), dim=1))
    assert (post.max(1).values > 0.5).all()  # a sharp model is not uniform
    # a prior is applied by Bayes' rule; a one-hot prior pins the answer
    prior = torch.arange(1, 11).double()
    expected = torch.softmax(ll.sum(-1) + (prior / prior.sum()).log().float(), dim=1)
    torch.testing.assert_close(class_posterior(model, images, prior=prior.numpy()), expected)
    pinned = class_posterior_by_prefix(model, images, prior=F.one_hot(torch.tensor(3), 10).float())
    assert torch.equal(pinned.argmax(-1), torch.full((4, 784), 3))


def test_sampling_shapes_order_and_seeded_reproducibility():
    model = tiny(Q=2, K=10, sharpen=3.0)
    a = sample_images(model, [0, 7, 3], n=2, generator=gen(5))
    b = sample_images(model, [0, 7, 3], n=2, generator=gen(5))
    c = sample_images(model, [0, 7, 3], n=2, generator=gen(6))
    assert a.shape == (6, 28, 28) and a.dtype == torch.uint8
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert set(a.unique().tolist()) <= {0, 255}
    # digit-major rows: sampling digit 7 alone with temperature 0 gives rows 2 and 3 of a greedy batch
    greedy = sample_images(model, [0, 7, 3], n=2, temperature=0)
    assert torch.equal(greedy[2], greedy[3])
    assert torch.equal(sample_images(model, 7, n=1, temperature=0)[0], greedy[2])


@pytest.mark.parametrize("grid", [(), (28, 28)])
def test_greedy_samples_are_the_argmax_of_a_full_forward(grid):
    """Checks the start-token alignment: output column t predicts pixel t (and, with a position_grid, the
    fast generator's columns agree with the full forward's, past the receptive field too)."""
    model = tiny(Q=4, K=10, start=1, sharpen=3.0, grid=grid)
    images = sample_images(model, [2, 5], n=1, temperature=0)
    x = encode_images(model, images)
    _, pred = score_levels(model, x)
    assert torch.equal(pred[0, 2], x[0]) and torch.equal(pred[1, 5], x[1])


def test_greedy_completion_of_a_late_hole_with_positions_is_the_argmax_of_a_full_forward():
    """complete() primes from a window of the last R known pixels (here from column 729 on, R = 18): with a
    position_grid the window must keep its absolute columns, or the completion would read the wrong rows."""
    model = tiny(Q=2, K=10, sharpen=3.0, grid=(28, 28), seed=2)
    assert model.receptive_field == 18
    image = digits(1, seed=5)[0]
    mask = torch.ones(28, 28, dtype=torch.bool)
    mask[26, 10:] = False
    mask[27] = False
    out = complete(model, image, mask, digit=4, n=1, num_particles=1, temperature=0)
    x = encode_images(model, out)
    _, pred = score_levels(model, x)
    hole = ~mask.reshape(-1)
    assert 0 < x[0][hole].sum() < hole.sum()  # not saturated: the positions decide pixels here
    assert torch.equal(pred[0, 4][hole], x[0][hole])
    assert torch.equal(out[0][mask], decode_levels(model, encode_images(model, image))[0][mask])


def test_iter_sample_images_fills_in_and_ends_at_sample_images():
    model = tiny(Q=2, K=10)
    steps = list(iter_sample_images(model, [1, 4], n=3, generator=gen(0), every=100))
    assert [done for done, _ in steps] == [100, 200, 300, 400, 500, 600, 700, 784]
    _, partial = steps[0]
    assert partial.shape == (6, 28, 28)
    assert (partial.flatten(1)[:, 100:] == 0).all()
    assert torch.equal(steps[-1][1], sample_images(model, [1, 4], n=3, generator=gen(0)))
    seen = []
    sample_images(model, [1], n=1, generator=gen(0), progress=lambda done, total: seen.append((done, total)))
    assert seen[0] == (28, 784) and seen[-1] == (784, 784) and len(seen) == 28


@pytest.mark.parametrize("index", [[4, 4, 0, 2, 1], [3, 0], [1, 1, 4, 0, 2, 2, 3, 0]], ids=["same", "fewer", "more"])
def test_reorder_fast_state_equals_a_state_built_from_reordered_rows(index):
    """Reordering to the same, a smaller or a larger number of rows (SMC resampling keeps the count; a
    caller may also drop or duplicate rows) gives the state a forward over those rows would, and leaves
    the model's weights alone."""
    model = tiny(Q=3, K=4)
    weights_before = {k: v.clone() for k, v in model.state_dict().items()}
    g = gen(1)
    x = torch.randint(0, 3, (5, 40), generator=g)
    cond = F.one_hot(torch.tensor([0, 1, 2, 3, 1]), 4).float()
    index = torch.tensor(index)
    logits, inputs = model(one_hot(x, 3), cond, return_layer_inputs=True)
    state = FastState.from_forward(model, inputs, logits, cond).reorder(index)
    logits2, inputs2 = model(one_hot(x[index], 3), cond[index], return_layer_inputs=True)
    expected = FastState.from_forward(model, inputs2, logits2, cond[index])
    assert state.logits.shape[0] == len(index)
    torch.testing.assert_close(state.logits, expected.logits)
    for _ in range(20):
        step = F.one_hot(torch.randint(0, 3, (len(index),), generator=g), 3).float()
        torch.testing.assert_close(state.step(step), expected.step(step))
    assert all(torch.equal(v, weights_before[k]) for k, v in model.state_dict().items())


def masks():
    top = torch.ones(28, 28, dtype=torch.bool)
    top[:10] = False  # hole at the very start
    middle = torch.ones(28, 28, dtype=torch.bool)
    middle[9:17, 4:22] = False
    scattered = torch.from_numpy(np.random.default_rng(0).random((28, 28)) < 0.7)
    last = torch.ones(28, 28, dtype=torch.bool)
    last[27, 27] = False
    return {"top": top, "middle": middle, "scattered": scattered, "last": last, "none": torch.ones(28, 28, dtype=torch.bool)}


@pytest.mark.parametrize("Q", [2, 256])
@pytest.mark.parametrize("digit", [None, 6])
def test_complete_never_changes_known_pixels(Q, digit):
    model = tiny(Q=Q, K=10)
    image = digits(1, seed=3)[0]
    quantized = decode_levels(model, encode_images(model, image))[0]
    for name, mask in masks().items():
        out, used = complete(model, image, mask, digit=digit, n=3, num_particles=4, generator=gen(0), return_digits=True)
        assert out.shape == (3, 28, 28) and out.dtype == torch.uint8, name
        assert torch.equal(out[:, mask], quantized[mask].expand(3, -1)), name
        if digit is not None:
            assert (used == digit).all()
        elif name != "none":
            assert ((used >= 0) & (used < 10)).all()
    if Q == 256:
        assert torch.equal(quantized, image)  # Q=256 keeps the raw values
    mask = masks()["middle"].numpy()  # numpy masks and images work too
    assert torch.equal(complete(model, image.numpy(), mask, digit, n=2, num_particles=4, generator=gen(3)),
                      complete(model, image, torch.from_numpy(mask), digit, n=2, num_particles=4, generator=gen(3)))


@pytest.mark.parametrize("level", [0, 1])
def test_complete_fills_the_hole_from_the_model_and_reports_progress(level):
    """A model that puts almost all its mass on one level fills every hole pixel with it (the hole is
    sampled from the model, not left as it was), keeps the known pixels, and reports progress per row."""
    model = tiny(Q=2, K=10)
    with torch.no_grad():
        model.head_out.weight.zero_()
        model.head_out.bias.copy_(torch.tensor([20.0, -20.0]) * (1 if level == 0 else -1))
    image = torch.full((28, 28), 255 * (1 - level), dtype=torch.uint8)  # known pixels: the other level
    mask = masks()["middle"]
    seen = []
    out = complete(model, image, mask, digit=1, n=4, num_particles=8, temperature=1.0, generator=gen(0),
                   progress=lambda done, total: seen.append((done, total)))
    assert (out[:, ~mask] == 255 * level).all()
    assert (out[:, mask] == 255 * (1 - level)).all()
    total = 784 - (9 * 28 + 4)
    assert seen[-1] == (total, total) and all(b == total for _, b in seen) and [a for a, _ in seen] == sorted(a for a, _ in seen)


def exact_completion_distribution(model, x0, x3, K):
    """p(y, x1, x2 | x0, x3) on a 1x4 image, by enumerating every (y, x1, x2) under a uniform prior."""
    table = {}
    for y, x1, x2 in itertools.product(range(K), range(2), range(2)):
        ll, _ = score_levels(model, torch.tensor([[x0, x1, x2, x3]]))
        table[(y, x1, x2)] = ll[0, y].sum().exp().item()
    total = sum(table.values())
    return {k: v / total for k, v in table.items()}


def trained_on_a_rule(K=3, steps=150, p_on=0.5):
    """A 1x4-pixel model taught that pixel 3 is a class-dependent function of pixels 1 and 2
    (XOR, AND, OR), so what lies below a hole at pixels 1..2 says a lot about the hole and the class.
    Pixels 0..2 are on with probability p_on."""
    model = tiny(Q=2, K=K, H=1, W=4, dilations=(1, 2), seed=0)
    g = gen(0)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.03)
    model.train()
    for _ in range(steps):
        y = torch.randint(0, K, (64,), generator=g)
        x = torch.randint(0, 2, (64, 3), generator=g) if p_on == 0.5 else (torch.rand(64, 3, generator=g) < p_on).long()
        x3 = torch.stack([x[:, 1] ^ x[:, 2], x[:, 1] & x[:, 2], x[:, 1] | x[:, 2]], 1).gather(1, y[:, None])
        seq = torch.cat([torch.zeros(64, 1, dtype=torch.long), x, x3], dim=1)  # start token first
        loss, _, _ = teacher_forced(model, seq, F.one_hot(y, K).float())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


def test_sequential_monte_carlo_conditions_on_pixels_below_the_hole():
    """On a 1x4 image with pixels 1 and 2 unknown, completions and digits follow the exact posterior
    given both pixel 0 and pixel 3, not just the prefix."""
    K = 3
    model = trained_on_a_rule(K)
    mask = torch.tensor([[True, False, False, True]])
    image = torch.tensor([[0, 0, 0, 255]], dtype=torch.uint8)
    exact = exact_completion_distribution(model, 0, 1, K)
    prefix_only = {}
    for y, x1, x2 in exact:  # what ignoring pixel 3 would give
        ll, _ = score_levels(model, torch.tensor([[0, x1, x2, 0]]))
        prefix_only[(y, x1, x2)] = ll[0, y, :3].sum().exp().item() / K
    assert max(abs(exact[k] - prefix_only[k]) for k in exact) > 0.05  # the test can tell them apart
    assert exact[(1, 0, 0)] < 0.01 and exact[(1, 1, 1)] > 0.15  # AND: pixel 3 = 1 needs both on
    counts = dict.fromkeys(exact, 0)
    g = gen(0)
    runs = 25
    for _ in range(runs):
        out, used = complete(model, image, mask, n=16, num_particles=64, generator=g, return_digits=True)
        for row, y in zip(out[:, 0], used.tolist()):
            counts[(y, int(row[1] > 0), int(row[2] > 0))] += 1
    total = 16 * runs
    for key in exact:
        assert abs(counts[key] / total - exact[key]) < 0.05, (key, counts[key] / total, exact[key])
    # with the digit given, the completion follows p(x1, x2 | x0, x3, y)
    out = torch.cat([complete(model, image, mask, digit=1, n=16, num_particles=64, generator=g) for _ in range(5)])
    assert (out[:, 0, 1:3] == 255).all()  # AND with pixel 3 on: both pixels on


def tempered_completion_distribution(model, K, T):
    """What complete() targets at temperature T on a 1x4 image with pixels 1..2 unknown and x0=0, x3=1:
    p(y | x0) q_T(x1 | x0, y) q_T(x2 | x0, x1, y) p(x3 | x0..x2, y), normalized, q_T(v) ~ p(v)^(1/T)."""
    ll = {(x1, x2): score_levels(model, torch.tensor([[0, x1, x2, 1]]))[0][0] for x1 in range(2) for x2 in range(2)}  # (K, 4)

    def tempered(p_of):  # {v: p(v)} -> {v: q_T(v)}
        w = {v: p ** (1 / T) for v, p in p_of.items()}
        return {v: w[v] / sum(w.values()) for v in w}

    table = {}
    for y, x1, x2 in itertools.product(range(K), range(2), range(2)):
        q1 = tempered({v: ll[(v, 0)][y, 1].exp().item() for v in range(2)})[x1]
        q2 = tempered({v: ll[(x1, v)][y, 2].exp().item() for v in range(2)})[x2]
        table[(y, x1, x2)] = ll[(x1, x2)][y, 0].exp().item() * q1 * q2 * ll[(x1, x2)][y, 3].exp().item()
    total = sum(table.values())
    return {k: v / total for k, v in table.items()}


@pytest.mark.parametrize("T", [0.5, 2.0])
def test_sequential_monte_carlo_at_a_temperature_tempers_each_step_and_weighs_by_the_model(T):
    """At temperature T the hole's pixels come from the tempered conditionals and the pixels below it
    weigh each particle by the model's own likelihood (complete's docstring): the completions follow that
    distribution, which differs from the untempered posterior."""
    K = 3
    model = trained_on_a_rule(K, p_on=0.8)  # hole pixels far from 50/50, so tempering moves them
    mask = torch.tensor([[True, False, False, True]])
    image = torch.tensor([[0, 0, 0, 255]], dtype=torch.uint8)
    target = tempered_completion_distribution(model, K, T)
    untempered = exact_completion_distribution(model, 0, 1, K)
    assert max(abs(target[k] - untempered[k]) for k in target) > 0.08  # well beyond the 0.05 tolerance below
    torch.testing.assert_close(torch.tensor(list(tempered_completion_distribution(model, K, 1.0).values())),
                               torch.tensor(list(untempered.values())))  # and at T = 1 the two agree
    counts = dict.fromkeys(target, 0)
    g = gen(0)
    runs = 25
    for _ in range(runs):
        out, used = complete(model, image, mask, n=16, num_particles=64, temperature=T, generator=g, return_digits=True)
        for row, y in zip(out[:, 0], used.tolist()):
            counts[(y, int(row[1] > 0), int(row[2] > 0))] += 1
    for key in target:
        assert abs(counts[key] / (16 * runs) - target[key]) < 0.05, (key, counts[key] / (16 * runs), target[key])


def test_seeded_completion_is_reproducible():
    model = tiny(Q=2, K=10)
    image = digits(1)[0]
    mask = masks()["scattered"]
    a = complete(model, image, mask, None, n=2, num_particles=8, generator=gen(9))
    b = complete(model, image, mask, None, n=2, num_particles=8, generator=gen(9))
    assert torch.equal(a, b)


@pytest.mark.parametrize("bad,match", [
    (torch.zeros(28, 27, dtype=torch.uint8), "shape"),
    (torch.zeros(2, 1, 28, 28, dtype=torch.uint8), "shape"),
    (torch.zeros(0, 28, 28, dtype=torch.uint8), "1 to"),
    (torch.zeros(MAX_IMAGES + 1, 28, 28, dtype=torch.uint8), "1 to"),
    (torch.zeros(28, 28, dtype=torch.bool), "dtype"),
    (np.full((28, 28), "a"), "numbers"),
    (torch.full((28, 28), float("nan")), "NaN"),
    (torch.full((28, 28), 256), "0..255"),
    (np.full((28, 28), -1), "0..255"),
])
def test_image_validation(bad, match):
    model = tiny()
    for call in (pixel_log_likelihoods, class_posterior, class_posterior_by_prefix):
        with pytest.raises(ValueError, match=match):
            call(model, bad)


def test_float_images_in_range_are_accepted():
    model = tiny(Q=256)
    image = digits(1)[0]
    torch.testing.assert_close(pixel_log_likelihoods(model, image.float()), pixel_log_likelihoods(model, image))


def test_argument_validation():
    model = tiny(K=10)
    image = digits(1)[0]
    mask = masks()["middle"]
    cases = [
        (lambda: sample_images(model, [], 1), "at least one digit"),
        (lambda: sample_images(model, [10], 1), "0 to 9"),
        (lambda: sample_images(model, [1.5], 1), "0 to 9"),
        (lambda: sample_images(model, [1], 0), "n must"),
        (lambda: sample_images(model, [1, 2], 51), f"At most {MAX_IMAGES}"),
        (lambda: sample_images(model, [1], 1, temperature=-1), "temperature"),
        (lambda: sample_images(model, [1], 1, temperature=float("nan")), "temperature"),
        (lambda: complete(model, image, mask[:10]), "known_mask"),
        (lambda: complete(model, image, mask.float() * 0.5), "known_mask"),
        (lambda: complete(model, image, mask, digit=11), "0 to 9"),
        (lambda: complete(model, image, mask, n=0), "n must"),
        (lambda: complete(model, image, mask, n=8, num_particles=200), "at most"),
        (lambda: complete(model, digits(2), mask), "one image"),
        (lambda: class_posterior(model, image, prior=[1, 2]), "prior"),
        (lambda: class_posterior(model, image, prior=[-1] + [1] * 9), "prior"),
    ]
    for call, match in cases:
        with pytest.raises(ValueError, match=match):
            call()
    unconditional = tiny(K=0)
    with pytest.raises(ValueError, match="unconditional"):
        sample_images(unconditional, [3], 1)
    assert sample_images(unconditional, None, 2, generator=gen(0)).shape == (2, 28, 28)
    not_images = tiny()
    not_images.data_config = {"task": "fourier"}
    with pytest.raises(ValueError, match="MNIST model"):
        class_posterior(not_images, image)
    del not_images.data_config
    with pytest.raises(ValueError, match="MNIST model"):
        sample_images(not_images, [1], 1)


def test_tasks_leave_the_model_untouched():
    model = tiny(K=10)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    attributes = set(vars(model))
    complete(model, digits(1)[0], masks()["middle"], None, n=2, num_particles=4, generator=gen(0))
    sample_images(model, [1], 1, generator=gen(0))
    assert set(vars(model)) == attributes
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert not model.training


def test_naive_rows_then_the_fast_queues_sample_the_same_digits():
    """A WaveNet sampled with its first rows from the naive state, then its queues primed on what they
    sampled: the same digits as the queues alone, for the same seed (Q=2 and Q=5)."""
    for Q in (2, 5):
        model = tiny(Q=Q, K=10, H=6, W=5)
        runs = [list(iter_sample_images(model, [3, 7], n=2, generator=gen(1), every=5, naive_rows=r))[-1][1] for r in (0, 3)]
        assert torch.equal(runs[0], runs[1])
