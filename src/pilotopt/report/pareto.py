"""Pareto fronts (both axes minimised: lower-left is better) and their plots.

A variant is on the front when no other variant is at least as good on both axes and strictly
better on one. Identical points do not dominate each other, so ties all stay on the front: the
report must not silently drop one of two equivalent variants.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

from pilotopt.atomic import atomic_path

FIG_SIZE = (7.5, 5.0)  # inches
DPI = 110
LOG_SPAN = 10.0  # an axis spanning more than this ratio is drawn in log scale
FRONT_COLOUR = "#d62728"
POINT_COLOUR = "#1f77b4"

# (figure file stem, x key, x label) for each front the report draws; y is always the MSE.
FRONTS = (
    ("pareto_latency_mse", "latency_p50_ms", "inference time p50 (ms)"),
    ("pareto_size_mse", "size_mb", "model size (MB)"),
)
Y_KEY = "mse_mean"
Y_LABEL = "MSE (normalised, mean of v and w)"


def dominates(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[0] <= b[0] and a[1] <= b[1] and (a[0] < b[0] or a[1] < b[1])


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the non-dominated points, ordered by x then y then index (deterministic)."""
    idx = [i for i, p in enumerate(points)
           if not any(dominates(q, p) for j, q in enumerate(points) if j != i)]
    return sorted(idx, key=lambda i: (points[i][0], points[i][1], i))


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def front_points(rows: list[dict], x_key: str, y_key: str = Y_KEY) -> tuple[list[dict], list[dict]]:
    """(plottable rows, front rows): ok rows with both numbers, and the non-dominated ones."""
    pts = [r for r in rows if r.get("status") == "ok" and _finite(r.get(x_key)) and _finite(r.get(y_key))]
    front = pareto_front([(r[x_key], r[y_key]) for r in pts])
    return pts, [pts[i] for i in front]


def plot_front(rows: list[dict], x_key: str, x_label: str, path: Path | str, title: str) -> Path | None:
    """Write a scatter of every ok variant with the front as a red staircase; None if nothing to plot."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    pts, front = front_points(rows, x_key)
    if not pts:
        return None
    fig = Figure(figsize=FIG_SIZE, dpi=DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    xs = [r[x_key] for r in pts]
    ys = [r[Y_KEY] for r in pts]
    on_front = {id(r) for r in front}
    ax.scatter(xs, ys, s=28, color=POINT_COLOUR, zorder=3, label="variant")
    if front:
        fx = [r[x_key] for r in front]
        fy = [r[Y_KEY] for r in front]
        ax.step(fx, fy, where="post", color=FRONT_COLOUR, lw=1.4, zorder=2, label="Pareto front")
        ax.scatter(fx, fy, s=70, facecolors="none", edgecolors=FRONT_COLOUR, lw=1.6, zorder=4)
    many = _many_frameworks(pts)
    for axis, values in (("x", xs), ("y", ys)):
        pos = [v for v in values if v > 0]
        if len(pos) == len(values) and min(pos) > 0 and max(pos) / min(pos) > LOG_SPAN:
            (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
            ticks = ax.xaxis if axis == "x" else ax.yaxis  # plain numbers (0.2, 0.5, 1), not 2x10^-1
            ticks.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
            ticks.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
            ticks.set_minor_formatter(NullFormatter())
    ax.set_xlabel(x_label + "  (lower is better)")
    ax.set_ylabel(Y_LABEL + "  (lower is better)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    _place_labels(fig, ax, [(r[x_key], r[Y_KEY], r["name"] + (f" [{r['framework']}]" if many else ""),
                             FRONT_COLOUR if id(r) in on_front else "#333333")
                            for r in sorted(pts, key=lambda r: (r[Y_KEY], r[x_key], r["name"]))])
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", metadata={"Software": None})
    return path


# label offsets (points) tried in turn: right, then above/below, then left of the point
_OFFSETS = ((5, 3), (5, -9), (5, 11), (5, -17), (-5, 3), (-5, -9), (5, 19), (5, -25), (-5, 11), (-5, -17))


def _place_labels(fig, ax, labels: list[tuple[float, float, str, str]]) -> None:
    """Greedy placement: each label takes the first offset whose box overlaps no placed label,
    else the least-overlapping one. Variants often share a size (every int8 model), so fixed
    offsets would print names on top of each other."""
    renderer = fig.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    placed = []
    for x, y, text, colour in labels:
        best, best_cost = None, None
        for dx, dy in _OFFSETS:
            ann = ax.annotate(text, (x, y), xytext=(dx, dy), textcoords="offset points", fontsize=7, color=colour,
                              ha="left" if dx > 0 else "right")
            box = ann.get_window_extent(renderer)
            cost = sum(_overlap(box, other) for other in placed)
            cost += box.width * box.height - _overlap(box, frame)  # the part outside the axes
            if best_cost is None or cost < best_cost:
                if best is not None:
                    best.remove()
                best, best_cost, best_box = ann, cost, box
            else:
                ann.remove()
            if cost == 0:
                break
        placed.append(best_box)


def _overlap(a, b) -> float:
    w = min(a.x1, b.x1) - max(a.x0, b.x0)
    h = min(a.y1, b.y1) - max(a.y0, b.y0)
    return w * h if w > 0 and h > 0 else 0.0


def _many_frameworks(rows: list[dict]) -> bool:
    return len({r.get("framework") for r in rows}) > 1


def fronts(rows: list[dict]) -> dict[str, list[str]]:
    """Front membership for each plotted pair: {figure stem: [variant keys on the front]}."""
    return {stem: [r["key"] for r in front_points(rows, x_key)[1]] for stem, x_key, _ in FRONTS}
