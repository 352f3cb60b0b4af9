"""How many CPU threads each task's step loop runs on. `torch.set_num_threads` sets OpenMP's thread
count for the calling OS thread only, and Streamlit runs every browser session's script in a thread of
its own, so a task can choose its count per call and restore the caller's afterwards without touching
any other session. The choices in TASK_THREADS are measured by `bench/threads.py` (bench/results/threads.json):
a step over a few rows is too small to split between two threads, and the second thread then only costs
synchronisation."""

from __future__ import annotations

import functools
import inspect
from contextlib import contextmanager

import torch

# Per task, the torch thread count its calls run at (bench/results/threads.json; None = leave the caller's).
TASK_THREADS: dict[str, int | None] = {
    "sample": 1,  # sample_images / iter_sample_images: one incremental step over B <= 100 rows per pixel
    "complete": 1,  # complete: SMC over n x particles rows (128 by default), one step per pixel
    "forecast": 1,  # forecast: one step over the trajectories per sample
    "posterior": 1,  # class_posterior(_by_prefix): one teacher-forced forward of 10 x H*W columns
}


@contextmanager
def torch_threads(n: int | None):
    """Within the block torch runs on n threads in this OS thread; the previous count is restored after,
    also when the block raises. n None: unchanged."""
    if n is None:
        yield
        return
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"A thread count must be a whole number >= 1, got {n!r}.")
    previous = torch.get_num_threads()
    if n == previous:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def task_threads(task: str):
    """Decorator: run the function at TASK_THREADS[task] threads (looked up per call). For a generator
    function the count applies around each step it computes, never while the caller holds a yielded
    value: a generator abandoned half-way must not leave its count set on whichever thread closes it."""
    if task not in TASK_THREADS:
        raise ValueError(f"Unknown task {task!r}; known: {sorted(TASK_THREADS)}.")

    def wrap(fn):
        if inspect.isgeneratorfunction(fn):
            @functools.wraps(fn)
            def stepwise(*args, **kwargs):
                steps = fn(*args, **kwargs)
                while True:
                    with torch_threads(TASK_THREADS[task]):
                        try:
                            item = next(steps)
                        except StopIteration as stop:
                            return stop.value
                    yield item

            return stepwise

        @functools.wraps(fn)
        def call(*args, **kwargs):
            with torch_threads(TASK_THREADS[task]):
                return fn(*args, **kwargs)

        return call

    return wrap
