"""Intervals and rank correlation for the closed-loop figures, with scipy's own estimators.

- `bootstrap_ci`: the mean and its 95 % percentile-bootstrap interval over repetitions
  (scipy.stats.bootstrap; seeded, so a report is reproducible). One value, or all equal: the
  interval is that value (there is no spread to resample).
- `spearman_ci`: Spearman's rank correlation (scipy.stats.spearmanr) with a paired bootstrap
  interval over variants."""

from __future__ import annotations

import math
import warnings

import numpy as np

CONFIDENCE = 0.95
RESAMPLES = 2000
SEED = 0


def bootstrap_ci(values, confidence: float = CONFIDENCE, seed: int = SEED) -> tuple[float, float, float] | None:
    """(mean, low, high) of `values`, or None when there are none."""
    x = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    if len(x) == 0:
        return None
    m = float(x.mean())
    if len(x) == 1 or np.all(x == x[0]):
        return m, m, m
    from scipy.stats import bootstrap

    res = bootstrap((x,), np.mean, confidence_level=confidence, n_resamples=RESAMPLES, method="percentile",
                    random_state=np.random.default_rng(seed), vectorized=True)
    lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
    return m, min(lo, m), max(hi, m)


def overlaps(a: tuple | None, b: tuple | None) -> bool:
    """Whether two (mean, low, high) intervals overlap (None never does)."""
    if a is None or b is None:
        return False
    return a[1] <= b[2] and b[1] <= a[2]


def spearman_ci(x, y, confidence: float = CONFIDENCE, seed: int = SEED) -> dict | None:
    """{rho, low, high, p, n} for paired samples; None with fewer than 3 pairs or no variation."""
    from scipy.stats import ConstantInputWarning, bootstrap, spearmanr

    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if len(x) < 3 or np.all(x == x[0]) or np.all(y == y[0]):
        return None
    res = spearmanr(x, y)
    rho, p = float(res.statistic), float(res.pvalue)

    def stat(a, b):
        # a resample can draw one value only; its rho is undefined and counts as 0 (scipy would
        # warn about it on the run's log, where nobody can act on it)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConstantInputWarning)
            r = spearmanr(a, b).statistic
        return r if np.isfinite(r) else 0.0

    ci = bootstrap((x, y), stat, paired=True, vectorized=False, confidence_level=confidence, method="percentile",
                   n_resamples=RESAMPLES // 2, random_state=np.random.default_rng(seed))
    return {"rho": rho, "low": float(ci.confidence_interval.low), "high": float(ci.confidence_interval.high),
            "p": p, "n": int(len(x))}


def ranks(values, descending: bool = False) -> list[float]:
    """Average ranks (1 = smallest, or largest with `descending`), as Spearman uses them."""
    from scipy.stats import rankdata

    v = np.asarray(values, dtype=np.float64)
    return [float(r) for r in rankdata(-v if descending else v)]
