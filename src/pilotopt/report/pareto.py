"""The Pareto fronts' plots (both axes minimised: lower-left is better); the fronts themselves are
decided in `pilotopt.decide.pareto`."""

from __future__ import annotations

from pathlib import Path

from pilotopt.atomic import atomic_path
from pilotopt.decide.pareto import Y_FIELD, front_points
from pilotopt.records import VariantSummary

FIG_SIZE = (7.5, 5.0)  # inches
DPI = 110
LOG_SPAN = 10.0  # an axis spanning more than this ratio is drawn in log scale
FRONT_COLOUR = "#d62728"
POINT_COLOUR = "#1f77b4"
Y_LABEL = "MSE (normalised, mean of v and w)"

def plot_front(rows: list[VariantSummary], x_key: str, x_label: str, path: Path | str, title: str) -> Path | None:
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
    xs = [getattr(r, x_key) for r in pts]
    ys = [getattr(r, Y_FIELD) for r in pts]
    on_front = {id(r) for r in front}
    ax.scatter(xs, ys, s=28, color=POINT_COLOUR, zorder=3, label="variant")
    if front:
        fx = [getattr(r, x_key) for r in front]
        fy = [getattr(r, Y_FIELD) for r in front]
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
    _place_labels(fig, ax, [(getattr(r, x_key), getattr(r, Y_FIELD), r.name + (f" [{r.framework}]" if many else ""),
                             FRONT_COLOUR if id(r) in on_front else "#333333")
                            for r in sorted(pts, key=lambda r: (getattr(r, Y_FIELD), getattr(r, x_key), r.name))])
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


def _many_frameworks(rows: list[VariantSummary]) -> bool:
    return len({r.framework for r in rows}) > 1
