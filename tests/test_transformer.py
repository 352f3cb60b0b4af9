"""The causal Transformer beyond the interface tests (tests/test_interface.py runs those on it too): the
attention mask by gradients, the key/value cache against the full forward at every pixel, and the
hazard a cache meets in PyTorch: `scaled_dot_product_attention(is_causal=True)` aligns its mask
top-left, so one new query against T cached keys would see key 0 alone."""

import pytest
import torch
import torch.nn.functional as F

import engine.models.transformer as transformer
from engine.models import build_model
from engine.models.base import NaiveState
from engine.models.transformer import CausalTransformer, CausalTransformerConfig
from families import tiny_transformer


def digits(labels, K=3):
    return F.one_hot(torch.as_tensor(labels), K).float()


def test_a_slot_reads_exactly_the_slots_up_to_its_own():
    """Slot s's output (row s of log_probs, p(x_s | x_<s, y)) has a non-zero gradient with respect to the
    inputs of slots 0..s (the start vector and x_0..x_{s-1}) and zero for every later slot."""
    model = tiny_transformer(3, 3, 3, 4).double()
    levels = torch.randint(0, 3, (2, 12), generator=torch.Generator().manual_seed(0))
    x = model.inputs(levels[:, :-1], digits([0, 2]).double()).detach().requires_grad_(True)
    h = x
    for block in model.blocks:
        h = block(h)[0]
    out = F.log_softmax(model.logits(h), dim=-1)
    for s in range(12):
        (grad,) = torch.autograd.grad(out[:, s, 0].sum(), x, retain_graph=True)
        reach = grad.abs().sum(dim=(0, 2))
        assert (reach[:s + 1] > 0).all(), f"slot {s} does not read some slot <= {s}"
        assert (reach[s + 1:] == 0).all(), f"slot {s} reads a later slot"


@pytest.mark.parametrize("Q,T0", [(2, 0), (5, 3), (256, 7)])
@torch.no_grad()
def test_the_cache_gives_the_full_forward_row_at_every_pixel(Q, T0):
    """Feed a whole image through the cached state: before each pixel its log-probs are that pixel's row
    of the teacher-forced forward of the full image."""
    model = tiny_transformer(Q, 3, 3, 4)
    g = torch.Generator().manual_seed(Q)
    levels = torch.randint(0, Q, (4, 12), generator=g)
    cond = digits([0, 1, 2, 1])
    full = model.log_probs(levels, cond)
    state = model.start(levels[:, :T0], cond)
    for t in range(T0, 12):
        torch.testing.assert_close(state.log_probs, full[:, t], rtol=1e-5, atol=1e-5)
        state.step(levels[:, t])
    assert state.log_probs is None
    with pytest.raises(ValueError, match="image is complete"):
        state.step(levels[:, 0])


@torch.no_grad()
def test_top_left_is_causal_for_a_single_query_would_see_only_the_first_key(monkeypatch):
    """The hazard itself, then the proof the cache tests catch it: PyTorch's is_causal=True mask for one
    query against several keys lets it read key 0 only; a state whose cached attention used it would
    leave the naive state from its first step on; the state as written matches the naive state."""
    q, k, v = (torch.randn(4, n, 8, generator=torch.Generator().manual_seed(n)) for n in (1, 5, 5))
    top_left = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    torch.testing.assert_close(top_left, v[:, :1])  # key 0 alone
    mine = transformer.cached_attention(q * 8 ** -0.5, k.transpose(1, 2), v)  # the cache's queries come scaled, its keys transposed
    torch.testing.assert_close(mine, F.scaled_dot_product_attention(q, k, v))  # every key, as a full causal row
    assert not torch.allclose(top_left, mine, atol=1e-3)

    model = tiny_transformer(3, 3, 3, 4)
    cond = digits([0, 2])
    levels = torch.randint(0, 3, (2, 12), generator=torch.Generator().manual_seed(1))

    def run(state):
        rows = [state.log_probs]
        for t in range(5):
            rows.append(state.step(levels[:, t]))
        return torch.stack(rows, dim=1)

    naive = run(NaiveState(model, levels[:, :0], cond))
    torch.testing.assert_close(run(model.start(levels[:, :0], cond)), naive, rtol=1e-5, atol=1e-5)
    monkeypatch.setattr(transformer, "cached_attention",
                        lambda q, keys_t, v: F.scaled_dot_product_attention(q, keys_t.transpose(1, 2), v, is_causal=True, scale=1.0))
    wrong = run(model.start(levels[:, :0], cond))
    torch.testing.assert_close(wrong[:, :1], naive[:, :1], rtol=1e-5, atol=1e-5)  # slot 0 is primed by the square forward
    assert ((wrong[:, 1:] - naive[:, 1:]).abs().amax(dim=(0, 2)) > 1e-3).all()  # every stepped slot sees key 0 alone


@torch.no_grad()
def test_the_state_lives_on_the_call_and_reorders_to_another_batch_size():
    model = tiny_transformer(3, 3, 3, 4)
    before = {name: p.clone() for name, p in model.state_dict().items()}
    attributes = set(vars(model))
    cond = digits([0, 1, 2])
    prefix = torch.tensor([[0, 1], [2, 2], [1, 0]])
    state = model.start(prefix, cond)
    other = model.start(prefix, cond)
    state.step(torch.tensor([1, 1, 1]))
    state.reorder(torch.tensor([2, 2, 0, 1]))  # 3 rows -> 4
    naive = NaiveState(model, prefix, cond)
    naive.step(torch.tensor([1, 1, 1]))
    naive.reorder(torch.tensor([2, 2, 0, 1]))
    for t in range(4):
        torch.testing.assert_close(state.log_probs, naive.log_probs, rtol=1e-5, atol=1e-5)
        state.step(torch.tensor([t % 3, 0, 1, 2]))
        naive.step(torch.tensor([t % 3, 0, 1, 2]))
    torch.testing.assert_close(other.log_probs, NaiveState(model, prefix, cond).log_probs, rtol=1e-5, atol=1e-5)
    assert set(vars(model)) == attributes
    for name, p in model.state_dict().items():
        assert torch.equal(p, before[name]), name


@torch.no_grad()
def test_the_class_embedding_conditions_every_pixel():
    model = tiny_transformer(3, 3, 3, 4)
    levels = torch.zeros(3, 12, dtype=torch.long)
    out = model.log_probs(levels, digits([0, 1, 2]))
    assert (out[0] - out[1]).abs().amax(dim=-1).min() > 1e-4  # every row, the first one included
    unconditional = tiny_transformer(3, 0, 3, 4)
    assert unconditional.class_embed is None and unconditional.log_probs(levels, None).shape == (3, 12, 3)


def test_bad_configs_and_inputs_say_what_is_wrong():
    with pytest.raises(ValueError, match=r"d_model \(10\) must be a multiple of heads \(4\)"):
        build_model("transformer", {"d_model": 10, "heads": 4})
    with pytest.raises(ValueError, match="CausalTransformerConfig.layers must be an integer >= 1"):
        CausalTransformerConfig(layers=0)
    model = CausalTransformer(CausalTransformerConfig(quantization_levels=2, cond_channels=0, height=2, width=3, d_model=8, heads=2))
    with pytest.raises(ValueError, match=r"levels must have shape \(B, 6\)"):
        model.log_probs(torch.zeros(1, 5, dtype=torch.long))
    with pytest.raises(ValueError, match="levels must lie in 0..1"):
        model.log_probs(torch.full((1, 6), 2))
    with pytest.raises(ValueError, match="prefix has 7 values but the image has only 6 pixels"):
        model.start(torch.zeros(1, 7, dtype=torch.long))
    complete = model.start(torch.zeros(2, 6, dtype=torch.long))
    assert complete.log_probs is None
