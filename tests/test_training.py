import torch
import torch.nn.functional as F

from engine.encoding import one_hot
from engine.models.wavenet import WaveNet, WaveNetConfig
from engine.sampling import gumbel_noise, gumbel_softmax
from engine.training import WeightAverage, check_origins, teacher_forced, teacher_forced_with_classes, unrolled_loss
import pytest


def make(cond=2, grid=()):
    torch.manual_seed(0)
    cfg = WaveNetConfig(quantization_levels=6, residual_channels=8, skip_channels=10, head_channels=10,
                        dilations=[1, 2, 4], kernel_size=2, input_kernel_size=2, cond_channels=cond, position_grid=list(grid))
    model = WaveNet(cfg).double()
    for table in model.position:  # trained-looking, not the zero start
        torch.nn.init.normal_(table)
    return model


def per_origin_loss(model, seq, cond, o, horizon, tau, noise, hard=True):
    """One origin at a time, the plain way: full forwards over the growing sequence of inputs."""
    Q = model.config.quantization_levels
    inputs = one_hot(seq[:, : o + 1], Q).double()
    losses = []
    for h in range(horizon):
        logits = model(inputs, cond)[:, :, -1]
        losses.append(F.cross_entropy(logits, seq[:, o + 1 + h]))
        if h < horizon - 1:
            sample = gumbel_softmax(logits, tau, hard=hard, noise=noise[:, h])
            inputs = torch.cat([inputs, sample[:, :, None]], dim=2)
    return torch.stack(losses).mean()


@pytest.mark.parametrize("hard", [True, False], ids=["straight-through", "soft relaxation"])
@pytest.mark.parametrize("cond_channels,grid", [(0, ()), (2, ()), (2, (4, 5))])
def test_batched_unrolled_loss_equals_mean_of_per_origin_losses(cond_channels, grid, hard):
    model = make(cond_channels, grid)
    g = torch.Generator().manual_seed(0)
    B, T, H = 3, 30, 5
    seq = torch.randint(0, 6, (B, T), generator=g)
    cond = torch.eye(2, dtype=torch.double)[[0, 1, 1]] if cond_channels else None
    origins = torch.tensor([0, 4, 11, 20, 24])
    noise = gumbel_noise((B * len(origins), H - 1, 6), g).double()
    _, logits, inputs = teacher_forced(model, seq, cond)
    batched = unrolled_loss(model, seq, cond, logits, inputs, origins, H, tau=0.8, noise=noise, hard=hard)
    one_by_one = torch.stack([
        per_origin_loss(model, seq, cond, o, H, 0.8, noise.view(B, len(origins), H - 1, 6)[:, i], hard)
        for i, o in enumerate(origins.tolist())
    ]).mean()
    torch.testing.assert_close(batched, one_by_one)
    # and the gradients agree too
    gb = torch.autograd.grad(batched, list(model.parameters()))
    _, logits, inputs = teacher_forced(model, seq, cond)
    go = torch.autograd.grad(torch.stack([
        per_origin_loss(model, seq, cond, o, H, 0.8, noise.view(B, len(origins), H - 1, 6)[:, i], hard)
        for i, o in enumerate(origins.tolist())
    ]).mean(), list(model.parameters()))
    for a, b in zip(gb, go):
        torch.testing.assert_close(a, b)
    other = unrolled_loss(model, seq, cond, logits, inputs, origins, H, tau=0.8, noise=noise, hard=not hard)
    assert not torch.allclose(batched, other)  # the setting changes what is fed back


def test_origins_out_of_range_are_rejected():
    with pytest.raises(ValueError, match="Origins"):
        check_origins(torch.tensor([26]), 5, 30)


def test_classification_loss_is_the_bayes_posterior_cross_entropy_and_shares_one_forward():
    model = make(cond=3)
    g = torch.Generator().manual_seed(1)
    B, T = 4, 20
    seq = torch.randint(0, 6, (B, T), generator=g)
    labels = torch.tensor([2, 0, 1, 2])
    cond = torch.eye(3, dtype=torch.double)[labels]
    loss_tf, loss_cls, logits, inputs = teacher_forced_with_classes(model, seq, cond, class_rows=3)
    # the teacher-forced part is exactly `teacher_forced` on the batch as given
    ref_tf, ref_logits, ref_inputs = teacher_forced(model, seq, cond)
    torch.testing.assert_close(loss_tf, ref_tf)
    torch.testing.assert_close(logits, ref_logits)
    for a, b in zip(inputs, ref_inputs):
        torch.testing.assert_close(a, b)
    # the classification part: log p(x | y=k) from one plain forward per class, then Bayes' rule (uniform prior)
    per_class = []
    for k in range(3):
        c = torch.eye(3, dtype=torch.double)[[k] * 3]
        lg = model(one_hot(seq[:3, :-1], 6).double(), c)
        per_class.append(-F.cross_entropy(lg, seq[:3, 1:], reduction="none").sum(dim=1))
    log_posterior = torch.log_softmax(torch.stack(per_class, dim=1), dim=1)
    expected = -log_posterior[torch.arange(3), labels[:3]].mean()
    torch.testing.assert_close(loss_cls, expected)
    # and it trains the classifier: its gradient is not zero and equals the one-by-one gradient
    ga = torch.autograd.grad(loss_cls, list(model.parameters()))
    gb = torch.autograd.grad(expected, list(model.parameters()))
    assert any(a.abs().sum() > 0 for a in ga)
    for a, b in zip(ga, gb):
        torch.testing.assert_close(a, b)
    # a temperature divides the per-class log-likelihoods before the softmax (the argmax, i.e. the decision, is unchanged)
    _, hot, _, _ = teacher_forced_with_classes(model, seq, cond, class_rows=3, temperature=3.0)
    lls = torch.stack(per_class, dim=1).detach()
    torch.testing.assert_close(hot, F.cross_entropy(lls / 3.0, labels[:3]))
    with pytest.raises(ValueError, match="class_rows"):
        teacher_forced_with_classes(model, seq, cond, class_rows=5)


def test_weight_average_follows_the_warmed_up_decay_and_restores_the_model():
    model = make()
    start = [p.detach().clone() for p in model.parameters()]
    avg = WeightAverage(model, 0.99)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    avg.update(model)  # first update: decay min(0.99, 2/11)
    d = 2 / 11
    for a, s, p in zip(avg.params, start, model.parameters()):
        torch.testing.assert_close(a, d * s + (1 - d) * p.detach())
    raw = [p.detach().clone() for p in model.parameters()]
    with avg.applied(model):
        assert all(torch.equal(p, a) for p, a in zip(model.parameters(), avg.params))
    assert all(torch.equal(p, r) for p, r in zip(model.parameters(), raw))
    other = WeightAverage(make(), 0.5)
    other.load_state_dict(avg.state_dict())
    assert other.updates == 1 and all(torch.equal(a, b) for a, b in zip(other.params, avg.params))
    with pytest.raises(ValueError, match="decay must lie in"):
        WeightAverage(model, 1.0)
    with pytest.raises(ValueError, match="does not match"):
        WeightAverage(make(cond=0), 0.5).load_state_dict(avg.state_dict())


def test_recipes_take_the_n_step_feedback_settings():
    from engine.recipes import TrainConfig, load_recipe_config

    recipe = "configs/wavenet-fourier-unrolled.json"
    cfg = TrainConfig(**load_recipe_config(recipe, ["--train.unroll_hard=false", "--train.gumbel_tau=0.6667"])["train"])
    assert (cfg.unroll_hard, cfg.gumbel_tau) == (False, 0.6667)
    assert TrainConfig().unroll_hard is True  # the default feeds back one-hot straight-through samples
    with pytest.raises(ValueError, match="train.unroll_hard must be a bool"):
        load_recipe_config(recipe, ["--train.unroll_hard=1"])
