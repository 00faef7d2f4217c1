"""Latency measurement, the same for every runtime: warm-up first, then timed calls until both
`min_calls` and `min_seconds` are reached (capped by `max_seconds`), reported with their spread."""

from __future__ import annotations

import time
from typing import Callable

import numpy as np

# the timing protocol's defaults, declared once (evaluate, `pilotopt run`'s offline section, benches)
MIN_CALLS = 300  # timed calls per measurement at least
MIN_SECONDS = 2.0  # seconds of timed calls per measurement at least


def time_calls(fn: Callable[[], object], min_calls: int = MIN_CALLS, min_seconds: float = MIN_SECONDS,
               warmup_calls: int = 20, warmup_seconds: float = 0.5, max_seconds: float = 60.0,
               keep_samples: bool = False) -> dict:
    """Call `fn()` repeatedly; returns milliseconds: mean, std, p50, p90, p99, min, max, and n (and
    with `keep_samples` every timed call in ms, in call order: what a reproducible drive draws from)."""
    t_end = time.perf_counter() + warmup_seconds
    done = 0
    while done < warmup_calls or time.perf_counter() < t_end:
        fn()
        done += 1
        if done >= 10 * warmup_calls:
            break
    samples = []
    start = time.perf_counter()
    while True:
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
        elapsed = time.perf_counter() - start
        if (len(samples) >= min_calls and elapsed >= min_seconds) or elapsed >= max_seconds:
            break
    out = summarize(samples)
    if keep_samples:
        out["samples_ms"] = [round(x * 1000.0, 5) for x in samples]
    return out


def summarize(seconds) -> dict:
    ms = np.asarray(seconds, dtype=np.float64) * 1000.0
    if len(ms) == 0:
        return {"n": 0}
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    return {"n": int(len(ms)), "mean_ms": float(ms.mean()), "std_ms": float(ms.std()), "p50_ms": float(p50),
            "p90_ms": float(p90), "p99_ms": float(p99), "min_ms": float(ms.min()), "max_ms": float(ms.max())}
