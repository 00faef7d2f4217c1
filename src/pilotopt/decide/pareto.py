"""Pareto dominance and fronts, for the report's figures and the search's trials alike.

A point is on the front when no other point is at least as good on every axis and strictly better
on one. Identical points do not dominate each other, so ties all stay on the front: neither the
report nor the search may silently drop one of two equivalent variants."""

from __future__ import annotations

import math
from typing import Sequence

from pilotopt.records import VariantSummary

# (figure file stem, x field, x label) for each front the report draws; y is always the MSE.
FRONTS = (
    ("pareto_latency_mse", "latency_p50_ms", "inference time p50 (ms)"),
    ("pareto_size_mse", "size_mb", "model size (MB)"),
)
Y_FIELD = "mse_mean"


def dominates(a: Sequence[float], b: Sequence[float], directions: Sequence[str] | None = None) -> bool:
    """Whether `a` is at least as good as `b` on every axis and better on one (each axis minimised
    unless its direction says "maximize")."""
    better = False
    for i, (x, y) in enumerate(zip(a, b)):
        if directions is not None and directions[i] == "maximize":
            x, y = -x, -y
        if x > y:
            return False
        better = better or x < y
    return better


def pareto_front(points: Sequence[Sequence[float]], directions: Sequence[str] | None = None) -> list[int]:
    """Indices of the non-dominated points, ordered by their coordinates then index (deterministic)."""
    idx = [i for i, p in enumerate(points)
           if not any(dominates(q, p, directions) for j, q in enumerate(points) if j != i)]
    return sorted(idx, key=lambda i: (*points[i], i))


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def front_points(rows: list[VariantSummary], x_field: str,
                 y_field: str = Y_FIELD) -> tuple[list[VariantSummary], list[VariantSummary]]:
    """(plottable summaries, the front): ok variants with both figures, and the non-dominated ones."""
    pts = [r for r in rows if r.status == "ok" and _finite(getattr(r, x_field)) and _finite(getattr(r, y_field))]
    front = pareto_front([(getattr(r, x_field), getattr(r, y_field)) for r in pts])
    return pts, [pts[i] for i in front]


def fronts(rows: list[VariantSummary]) -> dict[str, list[str]]:
    """Front membership for each plotted pair: {figure stem: [variant keys on the front]}."""
    return {stem: [r.key for r in front_points(rows, x_field)[1]] for stem, x_field, _ in FRONTS}
