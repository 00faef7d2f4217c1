"""The breaking point: how much slower hardware a variant drives on before it stops driving cleanly.

"Drives at 30x (all tested)" answers nothing when 30x is still below the camera period; the number
a user needs is where it breaks. `find_breaking_point` doubles the latency scale from `start` until
the first scale at which some repetition fails (or `cap`), then bisects (geometrically) between the
last clean scale and the first failing one until they are within `resolution` of each other. Each
probe is a callable's verdict, so the search knows nothing of simulators or models."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

from pilotopt.records import BreakingProbe

DEFAULT_CAP = 1000.0
DEFAULT_RESOLUTION = 0.25  # the answer is within 25 % of the true breaking point


@dataclass(frozen=True)
class BreakingPoint:
    scale: float | None  # the largest scale found clean (None: not even `start`)
    failed_at: float | None  # the smallest scale found failing (None: clean up to the cap)
    capped: bool  # clean at the cap: the breaking point lies beyond it
    resolution: float
    cap: float
    probes: list[BreakingProbe] = field(default_factory=list)  # every scale tried, in order

    def to_json(self) -> dict:
        return {"scale": self.scale, "failed_at": self.failed_at, "capped": self.capped,
                "resolution": self.resolution, "cap": self.cap, "probes": [p.to_json() for p in self.probes]}

    def scaled(self, k: float) -> "BreakingPoint":
        """The same search with every scale x k (probes made on top of a run's own latency scale k)."""
        def times(x):
            return None if x is None else x * k

        return BreakingPoint(times(self.scale), times(self.failed_at), self.capped, self.resolution, self.cap * k,
                             [p.model_copy(update={"scale": p.scale * k}) for p in self.probes])

    def text(self) -> str:
        """'up to 48x (fails at 64x)', 'over 1000x (the cap)', 'not even 1x'."""
        if self.scale is None:
            return f"not even {self.failed_at:g}x"
        if self.capped:
            return f"over {self.scale:g}x (the cap)"
        return f"up to {self.scale:.3g}x (fails at {self.failed_at:.3g}x)"


def find_breaking_point(probe: Callable[[float], BreakingProbe | bool], start: float = 1.0, cap: float = DEFAULT_CAP,
                        resolution: float = DEFAULT_RESOLUTION, max_probes: int = 40,
                        known: dict[float, BreakingProbe | bool] | None = None) -> BreakingPoint:
    """The largest latency scale in [start, cap] at which `probe(scale)` is clean, to `resolution`
    (relative): failed_at / scale <= 1 + resolution. `probe` returns a bool or a BreakingProbe (its
    own scale is replaced by the one probed).
    `known`: verdicts already measured ({scale: verdict}, e.g. the run's own slow:N drives); the
    search starts above the largest clean one below the first failure and never probes them again.
    Assumes that driving only gets worse as the latency grows (the search never revisits a scale)."""
    if not (start > 0 and cap >= start and resolution > 0):
        raise ValueError("need 0 < start <= cap and resolution > 0")
    probes: list[BreakingProbe] = []

    def row_of(scale: float, got: BreakingProbe | bool, source: str | None = None) -> BreakingProbe:
        update = {"scale": scale, **({"source": source} if source else {})}
        if isinstance(got, BreakingProbe):
            return got.model_copy(update=update)
        if not isinstance(got, bool):
            raise TypeError(f"a breaking-point probe returns a bool or a BreakingProbe, not {type(got).__name__}")
        return BreakingProbe(clean=got, **update)

    def clean(scale: float) -> bool:
        probes.append(row_of(scale, probe(scale)))
        return probes[-1].clean

    seen = sorted((row_of(float(k), v, "run") for k, v in (known or {}).items() if start <= float(k) <= cap),
                  key=lambda r: r.scale)
    probes.extend(seen)
    verdict = {r.scale: r.clean for r in seen}
    if not (verdict[start] if start in verdict else clean(start)):
        return BreakingPoint(None, start, False, resolution, cap, probes)
    bad = min((k for k, ok in verdict.items() if not ok), default=None)
    good = max(k for k, ok in [(start, True), *verdict.items()] if ok and (bad is None or k < bad))
    while bad is None:
        if good >= cap:
            return BreakingPoint(good, None, True, resolution, cap, probes)
        nxt = min(good * 2.0, cap)
        if clean(nxt):
            good = nxt
        else:
            bad = nxt
    while bad / good > 1.0 + resolution and len(probes) < max_probes:
        mid = math.sqrt(good * bad)
        mid = float(f"{mid:.3g}")  # a scale a person can read back, and a stable cache key
        if not good < mid < bad:
            break
        if clean(mid):
            good = mid
        else:
            bad = mid
    return BreakingPoint(good, bad, False, resolution, cap, probes)
