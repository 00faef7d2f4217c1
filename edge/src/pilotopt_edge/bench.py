"""`pilotopt-edge bench`: what one brain step costs on this device, frame in -> command out, and
the model call alone; p50/p90/p99, cold start and peak RSS, with every sample, where it ran and
on what. `pilotopt sim drive --latency-samples` reads the file to drive at this device's speed."""

from __future__ import annotations

import os
import platform
import socket
import sys
import time
from typing import Optional

import numpy as np

from pilotopt_edge.brain import REFERENCE, Brain
from pilotopt_edge.check import check, read_reference

SCHEMA = "pilotopt-edge.bench/1"


ARM_PARTS = {"0xd03": "Cortex-A53", "0xd04": "Cortex-A35", "0xd05": "Cortex-A55", "0xd07": "Cortex-A57",
             "0xd08": "Cortex-A72", "0xd09": "Cortex-A73", "0xd0a": "Cortex-A75", "0xd0b": "Cortex-A76",
             "0xd0c": "Neoverse-N1", "0xd0d": "Cortex-A77", "0xd41": "Cortex-A78", "0xd42": "Cortex-A78AE",
             "0xd4f": "Neoverse-V2", "0xd40": "Neoverse-V1", "0xd49": "Neoverse-N2"}  # ARM Ltd's MIDR part numbers


def _cpu_model() -> str:
    """x86: its model name; a board's own name (Raspberry Pi's `Model`); else ARM's core name from
    the MIDR part number (Linux on arm64 prints no model name)."""
    fields: dict = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                fields.setdefault(key.strip().lower(), value.strip())
    except OSError:
        pass
    for key in ("model name", "cpu model", "model", "hardware"):
        if fields.get(key) and not fields[key].isdigit():
            return fields[key]
    part = ARM_PARTS.get(fields.get("cpu part", "").lower())
    return part or platform.processor() or platform.machine()


EMULATED_ENV = "PILOTOPT_EDGE_EMULATED"  # set by an emulator's wrapper (scripts/arm64_target.sh): what it emulates


def device() -> dict:
    """Where a measurement was taken: enough to tell two machines (and two processes) apart, and
    whether the CPU is emulated (its timings are then the emulator's, not a real board's)."""
    return {"hostname": socket.gethostname(), "pid": os.getpid(), "machine": platform.machine(),
            "cpu": _cpu_model(), "cores": os.cpu_count(), "system": f"{platform.system()} {platform.release()}",
            "python": platform.python_version(), "executable": sys.executable,
            "emulated": os.environ.get(EMULATED_ENV) or None}


def peak_rss_mb() -> float:
    try:
        import resource
    except ImportError:  # not on Linux / macOS
        return float("nan")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024.0 * 1024.0) if sys.platform == "darwin" else rss / 1024.0


def summary(samples_ms) -> dict:
    a = np.asarray(samples_ms, dtype=np.float64)
    return {"p50_ms": float(np.percentile(a, 50)), "p90_ms": float(np.percentile(a, 90)),
            "p99_ms": float(np.percentile(a, 99)), "mean_ms": float(a.mean()), "n": int(len(a))}


def bench(deploy_dir: str, iterations: int = 200, warmup: int = 10, threads: int = 1,
          frames_path: Optional[str] = None, with_check: bool = False) -> dict:
    """The samples, where they were taken, and (`with_check`) the reference check's verdict from
    the same process: a remote bench proves in one call that the device computes what pilotopt does."""
    t0 = time.perf_counter()
    brain = Brain.load(deploy_dir, threads=threads)
    frames, _ = read_reference(frames_path or os.path.join(str(deploy_dir), REFERENCE))
    brain.step(frames[0])
    cold_ms = (time.perf_counter() - t0) * 1e3
    verdict = None
    if with_check:
        verdict = check(deploy_dir, frames_path, threads=threads, brain=brain)
        verdict.pop("commands")
    for i in range(warmup):
        brain.step(frames[i % len(frames)])
    step_ms, model_ms = [], []
    for i in range(iterations):
        s = time.perf_counter()
        brain.step(frames[i % len(frames)])
        step_ms.append((time.perf_counter() - s) * 1e3)
        model_ms.append(brain.last_model_s * 1e3)
    return {"schema": SCHEMA, "variant": brain.manifest.get("variant"), "runtime": brain.model.runtime,
            "runtime_version": getattr(brain.model, "version", ""), "threads": threads, "device": device(),
            "cold_start_ms": cold_ms, "peak_rss_mb": peak_rss_mb(),
            "brain_step": summary(step_ms), "model_call": summary(model_ms),
            "brain_step_samples_ms": step_ms, "model_call_samples_ms": model_ms,
            **({"check": verdict} if verdict is not None else {})}
