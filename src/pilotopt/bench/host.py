"""What every benchmark document says about the machine it ran on: the CPU, the package versions,
and how much of the CPU other processes took while it measured (a share that makes figures noisy)."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_snapshot() -> tuple[float, float, float] | None:
    """(busy CPU seconds of the whole machine, CPU seconds of this process and of its children it
    waited for, wall time), to tell how much of the machine OTHER processes used while we measured
    (Linux only): a benchmark's own child processes are not "others"."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return None
    busy = sum(fields[:8]) - fields[3] - fields[4]  # all but idle and iowait
    own = os.times()
    return (busy / os.sysconf("SC_CLK_TCK"), own.user + own.system + own.children_user + own.children_system,
            time.perf_counter())


def other_cpu_share(start, end) -> float | None:
    """Average share of all CPUs used by other processes between two snapshots."""
    if start is None or end is None or end[2] <= start[2]:
        return None
    other = (end[0] - start[0]) - (end[1] - start[1])
    return round(max(other, 0.0) / ((end[2] - start[2]) * (os.cpu_count() or 1)), 3)


def contention(start, limit: float, what: str) -> tuple[float | None, list[str]]:
    """Other processes' CPU share since the snapshot `start`, and the warning when it passed
    `limit` (`what`: what it made noisy)."""
    share = other_cpu_share(start, cpu_snapshot())
    if share is None or share <= limit:
        return share, []
    return share, [f"other processes used {share:.0%} of the CPU during the run: {what} are noisy"]


def versions() -> dict:
    from importlib import metadata  # only when a document is written

    out = {}
    for dist in ("torch", "tensorflow", "tf-keras", "ai-edge-litert", "onnx", "onnxruntime", "openvino", "tensorrt"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out
