"""The model interface (engine/models/base.py), checked on a tiny random model of every registered family
(tests/families.py: TINY) as a black box: causality, exact normalization, every fast state against
the naive state, and clear refusals of a folder or a recipe of the wrong family. A tiny exact joint
model that takes any order checks the seam complete() gives such families."""

import itertools
import json
import math
import re
from dataclasses import asdict, dataclass

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from engine.checkpoint import load_pretrained, save_pretrained
from engine.completion import complete
from engine.images import observed_scores, score_levels
from engine.models import MODEL_REGISTRY
from engine.models.base import AutoregressiveModel, NaiveState
from engine.recipes import load_recipe_config
from engine.sampling import temperature_sampler
from families import TINY
from test_image_tasks import data_config

FAMILIES = sorted(TINY)


def test_every_registered_family_has_a_tiny_model():
    assert set(TINY) == set(MODEL_REGISTRY)
    for name, (cls, _) in MODEL_REGISTRY.items():
        assert issubclass(cls, AutoregressiveModel) and cls.family_name and cls.family_summary, name


def one_hot_conditions(labels, K):
    return F.one_hot(torch.as_tensor(labels), K).float() if K else None


def log_likelihood(model, levels, cond, order=None):
    """log p(x | y) of level sequences (B, N): the sum of the rows of log_probs."""
    log_probs = model.log_probs(levels, cond) if order is None else model.log_probs(levels, cond, order=order)
    return log_probs.double().gather(-1, levels[..., None]).sum(dim=(1, 2))


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("Q,H,W", [(2, 3, 4), (3, 4, 5)])
@torch.no_grad()
def test_changing_a_value_leaves_the_rows_up_to_it_unchanged(family, Q, H, W):
    """Row t is log p(x_t | x_<t, y): changing x_j may change rows after j only (row j itself predicts x_j).
    Some later row must change, or the test would pass for a model that ignores its past."""
    model = TINY[family](Q, 3, H, W)
    N = H * W
    g = torch.Generator().manual_seed(0)
    levels = torch.randint(0, Q, (2, N), generator=g)
    cond = one_hot_conditions([0, 2], 3)
    orders = [None] + ([torch.randperm(N, generator=g)] if model.any_order else [])
    for order in orders:
        position = torch.arange(N) if order is None else order  # position[i]: the i-th generated
        base = model.log_probs(levels, cond) if order is None else model.log_probs(levels, cond, order=order)
        later_changed = False
        for i in sorted({0, 1, N // 2, N - 2, N - 1}):
            changed = levels.clone()
            changed[:, position[i]] = (changed[:, position[i]] + 1) % Q
            out = model.log_probs(changed, cond) if order is None else model.log_probs(changed, cond, order=order)
            up_to = position[:i + 1]
            torch.testing.assert_close(out[:, up_to], base[:, up_to], rtol=0, atol=1e-6)
            later_changed |= not torch.allclose(out[:, position[i + 1:]], base[:, position[i + 1:]], atol=1e-6)
        assert later_changed, "no row depends on an earlier value"


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("Q,H,W", [(2, 2, 3), (3, 2, 2)])
@pytest.mark.parametrize("K", [0, 2])
@torch.no_grad()
def test_the_probabilities_of_all_images_sum_to_one(family, Q, H, W, K):
    model = TINY[family](Q, K, H, W).double()
    images = torch.tensor(list(itertools.product(range(Q), repeat=H * W)))  # all Q^(H*W)
    for k in range(K) if K else [None]:
        cond = None if k is None else one_hot_conditions([k] * len(images), K).double()
        total = torch.logsumexp(log_likelihood(model, images, cond), dim=0)
        assert total.item() == pytest.approx(0.0, abs=1e-9)
        if model.any_order:
            order = torch.randperm(H * W, generator=torch.Generator().manual_seed(k or 0))
            assert torch.logsumexp(log_likelihood(model, images, cond, order), 0).item() == pytest.approx(0.0, abs=1e-9)


def step_together(fast, naive, steps: int, seed: int, reorder_at: int, index: torch.Tensor):
    """Step a fast state and the naive state side by side, sampling each with its own generator of the
    same seed: log-probs agree at every step, and so do the samples; both are reordered mid-way."""
    g_fast, g_naive = torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed)
    sample_fast, sample_naive = temperature_sampler(1.0, g_fast), temperature_sampler(1.0, g_naive)
    for s in range(steps):
        torch.testing.assert_close(fast.log_probs, naive.log_probs.to(fast.log_probs.dtype), rtol=1e-4, atol=1e-5)
        a, b = sample_fast(fast.log_probs), sample_naive(naive.log_probs)
        assert torch.equal(a, b), f"samples differ at step {s}"
        if s == reorder_at:
            fast.reorder(index)
            naive.reorder(index)
            a = a.index_select(0, index)
        fast.step(a)
        naive.step(a)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("T0", [0, 1, 5])
@torch.no_grad()
def test_the_fast_state_equals_the_naive_state(family, T0):
    """log-probs at every step, the same samples from the same seed, and a reorder to a different row
    count mid-way (particle resampling)."""
    Q, K, H, W = 3, 2, 3, 4
    model = TINY[family](Q, K, H, W)
    N = H * W
    g = torch.Generator().manual_seed(T0)
    prefix = torch.randint(0, Q, (3, T0), generator=g)
    cond = one_hot_conditions([1, 0, 1], K)
    index = torch.tensor([2, 0, 0, 1, 2])  # 3 rows -> 5
    steps = N - T0 - 1  # a fixed-length model need not step past its last value
    step_together(model.start(prefix, cond), NaiveState(model, prefix, cond), steps, seed=T0, reorder_at=steps // 2, index=index)
    if model.any_order:
        order = torch.randperm(N, generator=g)
        step_together(model.start(prefix, cond, order=order), NaiveState(model, prefix, cond, order=order), steps,
                      seed=T0, reorder_at=steps // 2, index=index)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("K", [0, 2])
@torch.no_grad()
def test_log_likelihood_is_log_probs_at_the_observed_values_and_scores_every_class(family, K):
    """`log_likelihood` (training's loss, the Bayes classifier) is `log_probs` gathered at the observed
    values, whether a family inherits it or writes its own (PixelCNN++: one bin of the mixture);
    `observed_scores` batches it over every class exactly as `score_levels` does over the whole Q."""
    Q, H, W = 5, 3, 4
    model = TINY[family](Q, K, H, W)
    g = torch.Generator().manual_seed(K)
    levels = torch.randint(0, Q, (3, H * W), generator=g)
    cond = one_hot_conditions([1, 0, 1], K) if K else None
    expected = model.log_probs(levels, cond).gather(-1, levels[..., None])[..., 0]
    torch.testing.assert_close(model.log_likelihood(levels, cond), expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(observed_scores(model, levels), score_levels(model, levels)[0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("family", FAMILIES)
def test_a_folder_of_one_family_is_refused_as_another(family, tmp_path):
    model = TINY[family](2, 10, 2, 3)
    save_pretrained(model, tmp_path / "m", data=data_config(2, 10, 2, 3))
    assert type(load_pretrained(tmp_path / "m", model_type=family)) is type(model)
    other = next(name for name in FAMILIES if name != family)
    mine, theirs = (re.escape(MODEL_REGISTRY[name][0].family_name) for name in (family, other))  # "PixelCNN++"
    with pytest.raises(ValueError, match=rf"holds a {mine} \('{family}'\), not a {theirs} \('{other}'\)"):
        load_pretrained(tmp_path / "m", model_type=other)
    with pytest.raises(ValueError, match="Unknown model type 'pixelsnake'; known types"):
        load_pretrained(tmp_path / "m", model_type="pixelsnake")
    # config.json relabelled as the other family: its model section does not fit, and that is said
    path = tmp_path / "m" / "config.json"
    config = json.loads(path.read_text())
    path.write_text(json.dumps({**config, "model_type": other}))
    with pytest.raises(ValueError, match=rf"'model' section is not a valid {theirs} \('{other}'\) config"):
        load_pretrained(tmp_path / "m")


def write_recipe(tmp_path, **top):
    smoke = json.loads(open("configs/smoke-mnist.json").read())
    path = tmp_path / "recipe.json"
    path.write_text(json.dumps({**smoke, **top}))
    return path


def test_a_recipe_names_a_known_trainable_family_and_only_its_keys(tmp_path, monkeypatch):
    monkeypatch.chdir(__import__("pathlib").Path(__file__).resolve().parents[1])
    trainable = sorted(name for name, (cls, _) in MODEL_REGISTRY.items() if cls.trainable)
    with pytest.raises(ValueError, match=rf"Unknown model_type 'pixelsnake'; valid model types: {re_list(trainable)}"):
        load_recipe_config(write_recipe(tmp_path, model_type="pixelsnake"))
    with pytest.raises(ValueError, match=rf"'mixture' model is not trained.*must be one of {re_list(trainable)}"):
        load_recipe_config(write_recipe(tmp_path, model_type="mixture"))
    for family in trainable:
        config_cls = MODEL_REGISTRY[family][1]
        keys = ", ".join(sorted(f for f in config_cls.__dataclass_fields__))
        with pytest.raises(ValueError, match=rf"model.colour; valid keys in 'model' for model_type '{family}': {keys}\."):
            load_recipe_config(write_recipe(tmp_path, model_type=family, model={"colour": 1}))


def re_list(names):
    return "\\[" + ", ".join(f"'{n}'" for n in names) + "\\]"


# --- the seam complete() gives a family that takes any order ------------------------------------


@dataclass
class JointConfig:
    quantization_levels: int = 2
    cond_channels: int = 2
    length: int = 6


class ExactJoint(AutoregressiveModel):
    """A full table of p(x | y) over all Q^N sequences, whose conditionals in any order are computed
    exactly by summing the table: a stand-in for a family like MADE that can put any pixel first."""

    family_name = "Exact joint stand-in"
    any_order = True

    def __init__(self, config: JointConfig):
        super().__init__()
        self.config = config
        Q, N = config.quantization_levels, config.length
        self.table = nn.Parameter(3.0 * torch.randn(max(config.cond_channels, 1), Q ** N))
        self.register_buffer("sequences", torch.tensor(list(itertools.product(range(Q), repeat=N))), persistent=False)

    @property
    def sequence_length(self) -> int:
        return self.config.length

    def log_probs(self, levels, cond=None, order=None):
        Q, N = self.config.quantization_levels, self.config.length
        order = torch.arange(N) if order is None else order
        joint = F.log_softmax(self.table, dim=-1)[cond.argmax(1) if cond is not None else torch.zeros(len(levels), dtype=torch.long)]
        out = torch.empty(len(levels), N, Q, dtype=joint.dtype)
        for b in range(len(levels)):
            for i, t in enumerate(order.tolist()):
                seen = (self.sequences[:, order[:i]] == levels[b, order[:i]]).all(dim=1)
                for q in range(Q):
                    out[b, t, q] = torch.logsumexp(joint[b][seen & (self.sequences[:, t] == q)], 0)
                out[b, t] -= torch.logsumexp(out[b, t], 0)
        return out

    def start(self, prefix, cond=None, order=None):
        self.orders_seen.append(None if order is None else order.tolist())  # test-only spy, see below
        return NaiveState(self, prefix, cond, order)


@torch.no_grad()
def test_complete_conditions_an_any_order_family_on_every_known_pixel_exactly():
    torch.manual_seed(0)
    model = ExactJoint(JointConfig()).eval()
    model.orders_seen = []
    model.data_config = data_config(2, 2, 2, 3)
    image = torch.tensor([[0, 255, 0], [255, 255, 0]], dtype=torch.uint8)
    mask = torch.tensor([[False, True, False], [False, True, True]])  # positions 1, 4, 5 known
    x = (image.flatten() > 127).long()
    known = mask.flatten()
    # brute force: p(unknown | known, y) and p(y | known) from the table
    joint = F.log_softmax(model.table, dim=-1)  # (K, 2^6)
    fits = (model.sequences[:, known] == x[known]).all(dim=1)
    posterior = torch.softmax(torch.logsumexp(joint[:, fits], dim=1), dim=0)
    outs, digits = [], []
    for seed in range(4):
        out, d = complete(model, image, mask, digit=None, n=100, generator=torch.Generator().manual_seed(seed), return_digits=True)
        outs.append(out)
        digits.append(d)
    out, digits = torch.cat(outs), torch.cat(digits)
    assert model.orders_seen[0] == [1, 4, 5, 0, 2, 3]  # the known pixels first, then the hole
    assert torch.equal(out[:, mask], image[mask].expand(len(out), -1))  # known pixels kept
    freq = torch.bincount(digits, minlength=2).double() / len(digits)
    assert (freq - posterior).abs().max() < 4.5 * math.sqrt(0.25 / len(digits))
    for y in (0, 1):  # the unknown pixels of digit y's completions follow p(unknown | known, y)
        rows = (out[digits == y].flatten(1)[:, ~known] > 127).long()
        exact = torch.softmax(joint[y, fits], 0)  # over the sequences that fit, in product order
        codes = rows @ torch.tensor([4, 2, 1])
        fit_codes = model.sequences[fits][:, ~known] @ torch.tensor([4, 2, 1])
        emp = torch.bincount(codes, minlength=8).double()[fit_codes] / max(len(rows), 1)
        sd = torch.sqrt(exact * (1 - exact) / max(len(rows), 1))
        assert ((emp - exact).abs() <= 4.5 * sd + 0.01).all(), (y, emp, exact)
