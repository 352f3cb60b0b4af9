"""Per-call thread counts (engine/threads.py): a task runs at its own count, the caller's is restored
after (also on error and between a generator's steps), and another OS thread - another browser session
under Streamlit - keeps its own count throughout."""

import threading

import numpy as np
import pytest
import torch

import engine.completion as completion
import engine.image_tasks as image_tasks
import engine.tasks as tasks
from engine import threads
from engine.threads import TASK_THREADS, task_threads, torch_threads
from tests.test_image_tasks import tiny


@pytest.fixture
def caller_at_2():
    """The calling thread at 2 torch threads (the app's default on the 2-core machine), restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_torch_threads_sets_inside_and_restores_after(caller_at_2):
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2
    with pytest.raises(RuntimeError, match="boom"):
        with torch_threads(1):
            raise RuntimeError("boom")
    assert torch.get_num_threads() == 2
    with torch_threads(None):
        assert torch.get_num_threads() == 2


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_torch_threads_refuses_bad_counts(bad):
    with pytest.raises(ValueError, match="thread count"):
        with torch_threads(bad):
            pass


def test_another_threads_count_is_untouched(caller_at_2):
    """A worker thread enters torch_threads(1) and holds it while this thread looks at its own count."""
    inside, release, seen = threading.Event(), threading.Event(), {}

    def worker():
        torch.set_num_threads(2)
        with torch_threads(1):
            seen["worker inside"] = torch.get_num_threads()
            inside.set()
            release.wait(10)
        seen["worker after"] = torch.get_num_threads()

    t = threading.Thread(target=worker)
    t.start()
    assert inside.wait(10)
    seen["main while worker inside"] = torch.get_num_threads()
    with torch_threads(1):  # and the other way round: this thread's change leaves the worker's alone
        release.set()
        t.join(10)
    assert seen == {"worker inside": 1, "main while worker inside": 2, "worker after": 2}
    assert torch.get_num_threads() == 2


def test_task_threads_applies_per_call_and_reads_the_table_each_call(caller_at_2, monkeypatch):
    @task_threads("posterior")
    def count():
        return torch.get_num_threads()

    monkeypatch.setitem(TASK_THREADS, "posterior", 1)
    assert count() == 1
    assert torch.get_num_threads() == 2
    monkeypatch.setitem(TASK_THREADS, "posterior", None)
    assert count() == 2
    with pytest.raises(ValueError, match="Unknown task"):
        task_threads("nonsense")


def test_a_generator_runs_its_steps_at_the_task_count_and_yields_at_the_callers(caller_at_2, monkeypatch):
    monkeypatch.setitem(TASK_THREADS, "sample", 1)

    @task_threads("sample")
    def steps():
        for _ in range(3):
            yield torch.get_num_threads()
        return "done"

    it = steps()
    inside = []
    for value in it:
        inside.append(value)
        assert torch.get_num_threads() == 2  # the caller's code between steps runs at its own count
    assert inside == [1, 1, 1]
    abandoned = steps()
    next(abandoned)
    abandoned.close()  # closing half-way leaves the count alone
    assert torch.get_num_threads() == 2


def _record_threads_in_sampler(module, monkeypatch) -> list[int]:
    seen = []
    make = module.make_sampler

    def recording(*args, **kwargs):
        sampler = make(*args, **kwargs)

        def sample(logits):
            seen.append(torch.get_num_threads())
            return sampler(logits)

        return sample

    monkeypatch.setattr(module, "make_sampler", recording)
    return seen


def test_the_engines_tasks_run_their_steps_at_their_count(caller_at_2, monkeypatch):
    """Sampling, completion, forecasting and the posterior: every step at TASK_THREADS' count, the
    caller's count back after each call."""
    for task in TASK_THREADS:
        monkeypatch.setitem(TASK_THREADS, task, 1)
    model = tiny(Q=2, K=10, H=4, W=4)
    seen = _record_threads_in_sampler(image_tasks, monkeypatch)
    image_tasks.sample_images(model, [3], 2, generator=torch.Generator().manual_seed(0))
    assert seen and set(seen) == {1} and torch.get_num_threads() == 2
    seen = _record_threads_in_sampler(completion, monkeypatch)
    mask = torch.ones(4, 4, dtype=torch.bool)
    mask[2:] = False
    image_tasks.complete(model, torch.zeros(4, 4, dtype=torch.uint8), mask, 3, n=2, num_particles=4,
                         generator=torch.Generator().manual_seed(0))
    assert seen and set(seen) == {1} and torch.get_num_threads() == 2

    scored = []
    pll = image_tasks.pixel_log_likelihoods
    monkeypatch.setattr(image_tasks, "pixel_log_likelihoods", lambda *a: scored.append(torch.get_num_threads()) or pll(*a))
    image_tasks.class_posterior_by_prefix(model, torch.zeros(4, 4, dtype=torch.uint8))
    image_tasks.class_posterior(model, torch.zeros(4, 4, dtype=torch.uint8))
    assert scored == [1, 1] and torch.get_num_threads() == 2

    series = tiny(Q=16, K=0)
    series.data_config = {"quantization": {"levels": 16, "low": -1.0, "high": 1.0}}
    seen = _record_threads_in_sampler(tasks, monkeypatch)
    tasks.forecast(series, np.zeros(5), 4, 3, generator=torch.Generator().manual_seed(0))
    assert seen and set(seen) == {1} and torch.get_num_threads() == 2


def test_every_task_in_the_table_is_measured():
    """TASK_THREADS' choices come from bench/results/threads.json, one per task."""
    import json
    from pathlib import Path

    measured = json.loads((Path(threads.__file__).resolve().parents[1] / "bench" / "results" / "threads.json").read_text())
    assert set(measured["tasks"]) == set(TASK_THREADS)
    for task, row in measured["tasks"].items():
        assert TASK_THREADS[task] == row["chosen_threads"], task
