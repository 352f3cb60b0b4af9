"""What a benchmark's figures were measured on, for the meta block of its JSON."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import torch


def cpu_model() -> str:
    """The CPU's name as the kernel reports it (figures are only comparable on the same one)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_meta(threads: int, device: str = "cpu") -> dict:
    """torch version, device, CPU model, torch thread count and the 1-minute load average when it was
    written (CPU figures taken beside other work read slower): the keys every bench JSON carries."""
    return {"threads": threads, "torch": torch.__version__, "device": device, "cpu": cpu_model(), "cores": os.cpu_count(),
            "load_1min": round(os.getloadavg()[0], 2)}
