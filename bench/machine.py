"""The machine a benchmark ran on, for its printed results (docs/benchmarks.md)."""

from __future__ import annotations

import os
import platform


def machine() -> str:
    """Cores, CPU model, Python version and the load average when the benchmark started."""
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    load = os.getloadavg()
    return (
        f"nproc={os.cpu_count()}, CPU {model!r}, Python {platform.python_version()}, "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
