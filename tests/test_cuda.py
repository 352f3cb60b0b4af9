"""The CUDA path: the same engine on a GPU gives what it gives on the CPU. Skipped where no GPU is
present (CI); run on a lent GPU machine with `pytest tests/test_cuda.py`."""

import itertools
import json

import pytest
import torch

from engine.encoding import one_hot
from engine.generation import generate_fast, generate_naive
from engine.image_tasks import class_posterior_by_prefix, complete, pixel_log_likelihoods, sample_images
from engine.sampling import greedy
from engine.training import teacher_forced, unrolled_loss
from test_generation import make
from test_image_tasks import digits, tiny
from test_mixture import make as make_mixture

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
CUDA = torch.device("cuda")


@pytest.fixture(autouse=True)
def exact_matmuls():
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


def steps(gen, model, prefix, cond, n):
    out = list(itertools.islice(gen(model, prefix, greedy, cond), n))
    return torch.stack([s.sample for s in out], 1), torch.stack([s.logits for s in out], 1)


def test_fast_and_naive_generation_on_cuda_equal_the_cpu():
    cpu = make(cond=3)
    gpu = make(cond=3).to(CUDA)
    prefix = torch.randint(0, 7, (4, cpu.receptive_field + 3), generator=torch.Generator().manual_seed(0))
    cond = torch.eye(3)[[0, 1, 2, 0]]
    cs, cl = steps(generate_fast, cpu, prefix, cond, 40)
    for gen in (generate_fast, generate_naive):
        gs, gl = steps(gen, gpu, prefix.to(CUDA), cond.to(CUDA), 40)
        assert gs.device.type == "cuda"
        torch.testing.assert_close(gl.cpu(), cl, rtol=1e-4, atol=1e-4)
        assert torch.equal(gs.cpu(), cs)


def test_a_mixture_generates_on_cuda_as_on_the_cpu():
    cpu = make_mixture(K=3)
    gpu = make_mixture(K=3).to(CUDA)
    prefix = torch.randint(0, 7, (2, 9), generator=torch.Generator().manual_seed(0))
    cond = torch.eye(3)[[2, 0]]
    cs, cl = steps(generate_fast, cpu, prefix, cond, 30)
    for gen in (generate_fast, generate_naive):
        gs, gl = steps(gen, gpu, prefix.to(CUDA), cond.to(CUDA), 30)
        torch.testing.assert_close(gl.cpu(), cl, rtol=1e-4, atol=1e-4)
        assert torch.equal(gs.cpu(), cs)


def test_training_losses_and_gradients_on_cuda_equal_the_cpu():
    cpu = make(cond=3)
    gpu = make(cond=3).to(CUDA)
    g = torch.Generator().manual_seed(1)
    seq = torch.randint(0, 7, (3, 50), generator=g)
    cond = torch.eye(3)
    origins = torch.tensor([0, 10, 30])
    noise = -torch.log(-torch.log(torch.rand(9, 4, 7, generator=g)))
    losses = []
    for model, dev in ((cpu, "cpu"), (gpu, CUDA)):
        loss, logits, inputs = teacher_forced(model, seq.to(dev), cond.to(dev))
        total = loss + unrolled_loss(model, seq.to(dev), cond.to(dev), logits, inputs, origins.to(dev), 5, 1.0, noise=noise.to(dev))
        grads = torch.autograd.grad(total, list(model.parameters()))
        losses.append((total.item(), [x.cpu() for x in grads]))
    assert losses[0][0] == pytest.approx(losses[1][0], rel=1e-4)
    for a, b in zip(losses[0][1], losses[1][1]):
        torch.testing.assert_close(b, a, rtol=1e-3, atol=1e-5)


def test_image_tasks_on_cuda():
    cpu, gpu = tiny(), tiny().to(CUDA)
    gpu.data_config = cpu.data_config
    images = digits(3)
    torch.testing.assert_close(pixel_log_likelihoods(gpu, images).cpu(), pixel_log_likelihoods(cpu, images), rtol=1e-4, atol=1e-4)
    post = class_posterior_by_prefix(gpu, images)
    assert post.shape == (3, 784, 10) and torch.allclose(post.sum(-1), torch.ones(3, 784, device=post.device), atol=1e-4)
    a = sample_images(gpu, [1, 7], n=2, generator=torch.Generator(device="cuda").manual_seed(3))
    b = sample_images(gpu, [1, 7], n=2, generator=torch.Generator(device="cuda").manual_seed(3))
    assert torch.equal(torch.as_tensor(a), torch.as_tensor(b)) and tuple(torch.as_tensor(a).shape) == (4, 28, 28)
    with pytest.raises(ValueError, match="generator"):
        sample_images(gpu, [1], generator=torch.Generator().manual_seed(0))
    mask = torch.ones(28, 28, dtype=torch.bool)
    mask[10:16] = False
    out = torch.as_tensor(complete(gpu, images[0], mask, digit=3, n=2, num_particles=4,
                                   generator=torch.Generator(device="cuda").manual_seed(0)))
    known = mask[None].expand_as(out)
    assert torch.equal((out[known] > 127), (images[0][None].expand_as(out)[known] > 127))


def test_train_cli_trains_and_exports_on_cuda(tmp_path):
    import train
    from engine.checkpoint import load_pretrained

    assert train.main(["--config", "configs/smoke-fourier.json", f"--runs={tmp_path}/runs", f"--train.export_dir={tmp_path}/export",
                       "--train.device=cuda", "--train.steps=50", "--time-budget=5"]) == 0
    card = (tmp_path / "export" / "smoke-fourier" / "README.md").read_text()
    assert "cuda (" in card and "--time-budget" not in card
    model = load_pretrained(tmp_path / "export" / "smoke-fourier")
    assert next(model.parameters()).device.type == "cpu"
