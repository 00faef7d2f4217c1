"""Latency measurement, the same for every runtime: warm-up first, then timed calls until both
`min_calls` and `min_seconds` are reached (capped by `max_seconds`), reported with their spread."""

from __future__ import annotations

import time
from typing import Callable

import numpy as np

from pilotopt.records import LatencyStats

# the timing protocol's defaults, declared once (evaluate, `pilotopt run`'s offline section, benches)
MIN_CALLS = 300  # timed calls per measurement at least
MIN_SECONDS = 2.0  # seconds of timed calls per measurement at least


def sample_calls(fn: Callable[[], object], min_calls: int = MIN_CALLS, min_seconds: float = MIN_SECONDS,
                 warmup_calls: int = 20, warmup_seconds: float = 0.5, max_seconds: float = 60.0) -> list[float]:
    """Call `fn()` repeatedly: warm-up first, then timed calls until both `min_calls` and
    `min_seconds` are reached (or `max_seconds`); every timed call's seconds, in call order."""
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
    return samples


def time_calls(fn: Callable[[], object], **timing) -> LatencyStats:
    """`sample_calls` summarized: milliseconds mean, std, p50, p90, p99, min, max, and n."""
    return summarize(sample_calls(fn, **timing))


def summarize(seconds) -> LatencyStats:
    ms = np.asarray(seconds, dtype=np.float64) * 1000.0
    if len(ms) == 0:
        raise ValueError("no timed calls to summarize")
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    return LatencyStats(n=int(len(ms)), mean_ms=float(ms.mean()), std_ms=float(ms.std()), p50_ms=float(p50),
                        p90_ms=float(p90), p99_ms=float(p99), min_ms=float(ms.min()), max_ms=float(ms.max()))
