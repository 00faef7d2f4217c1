"""The closed-loop figures of the report: the decision plot (latency against driving score, the
chosen variant marked), the variant x condition heatmap of the driving score, and offline MSE
against driving (score and autonomy). Labels are placed by pareto._place_labels, and only the
points a reader needs are labelled (the front, the chosen one, the baselines)."""

from __future__ import annotations

import math
from pathlib import Path

from pilotopt.atomic import atomic_path
from pilotopt.decide.pareto import pareto_front
from pilotopt.decide.verdict import DecidedVariant
from pilotopt.records import BreakingPointRecord
from pilotopt.report.pareto import DPI, FRONT_COLOUR, POINT_COLOUR, _place_labels

CHOSEN_COLOUR = "#2ca02c"
BASELINE_COLOUR = "#ff7f0e"


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _save(fig, path: Path) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", metadata={"Software": None})
    return path


def _figure(size):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def speed_front(rows: list[DecidedVariant]) -> list[DecidedVariant]:
    """The variants nothing beats on both latency (lower) and driving score (higher)."""
    pts = [r for r in rows if _finite(r.latency_p50_ms) and _finite(r.cl_score_mean)]
    front = pareto_front([(r.latency_p50_ms, r.cl_score_mean) for r in pts], ("minimize", "maximize"))
    return sorted((pts[i] for i in front), key=lambda r: r.latency_p50_ms)


def decided_latency(rows: list[DecidedVariant]) -> tuple[list[DecidedVariant], str | None]:
    """(rows with the latency the decision ranked by, the target): with a target device its brain
    step p50, and no latency for what it cannot run (not plotted); else the rows as they are."""
    target = next((r.target for r in rows if r.target), None)
    if not target:
        return rows, None
    return [r.model_copy(update={"latency_p50_ms": r.target_brain_step_p50_ms if r.target_status == "ok" else None})
            for r in rows], target


def decision_plot(rows: list[DecidedVariant], rec: dict, path: Path) -> Path | None:
    rows, target = decided_latency(rows)
    pts = [r for r in rows if r.status == "ok" and _finite(r.latency_p50_ms)
           and _finite(r.cl_score_mean)]
    if not pts:
        return None
    fig = _figure((10.0, 5.0))
    ax = fig.add_subplot(1, 1, 1)
    xs = [r.latency_p50_ms for r in pts]
    ys = [r.cl_score_mean for r in pts]
    lo = [max(0.0, r.cl_score_mean - (r.cl_score_lo if _finite(r.cl_score_lo) else r.cl_score_mean))
          for r in pts]
    hi = [max(0.0, (r.cl_score_hi if _finite(r.cl_score_hi) else r.cl_score_mean) - r.cl_score_mean)
          for r in pts]
    ax.errorbar(xs, ys, yerr=[lo, hi], fmt="o", ms=4, color=POINT_COLOUR, ecolor="#9ab", elinewidth=1, capsize=2,
                zorder=3, label="variant (95 % interval over repetitions)")
    front = speed_front(pts)
    if front:
        ax.step([r.latency_p50_ms for r in front], [r.cl_score_mean for r in front], where="post",
                color=FRONT_COLOUR, lw=1.2, zorder=2, label="front: nothing faster drives better")

    bases, recommended = set(rec.get("baselines") or ()), rec.get("recommended")
    base = [r for r in pts if r.key in bases]
    if base:
        ax.scatter([r.latency_p50_ms for r in base], [r.cl_score_mean for r in base], marker="s", s=70,
                   facecolors="none", edgecolors=BASELINE_COLOUR, lw=1.6, zorder=4, label="baseline")
    chosen = [r for r in pts if r.key == recommended]
    if chosen:
        ax.scatter([chosen[0].latency_p50_ms], [chosen[0].cl_score_mean], marker="*", s=260,
                   color=CHOSEN_COLOUR, edgecolors="black", lw=0.6, zorder=5, label="recommended")
    if min(xs) > 0 and max(xs) / min(xs) > 10:
        ax.set_xscale("log")
    ax.set_xlabel(f"brain step p50 on {target} (ms, lower is better)" if target
                  else "inference time p50 (ms, lower is better)")
    ax.set_ylabel("driving score (0-100, higher is better)")
    ax.set_title("Speed against driving quality", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    # beside the axes: inside, it hid the variants that scored 0 at the bottom
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, borderaxespad=0.0)
    fig.tight_layout()
    keys = {r.key for r in front} | {r.key for r in base} | ({recommended} if recommended else set())
    labelled = [r for r in pts if r.key in keys]
    _place_labels(fig, ax, [(r.latency_p50_ms, r.cl_score_mean, r.name,
                             CHOSEN_COLOUR if r.key == recommended else "#333333")
                            for r in sorted(labelled, key=lambda r: (r.latency_p50_ms, r.name))])
    return _save(fig, path)


def heatmap(rows: list[DecidedVariant], conditions: list[str], path: Path) -> Path | None:
    """Driving score per variant (rows) and condition (columns), for the variants driven under
    more than the default condition."""
    mine = [r for r in rows if len(r.cl_conditions) > 1]
    if not mine or len(conditions) < 2:
        return None
    import numpy as np

    grid = np.full((len(mine), len(conditions)), np.nan)
    for i, r in enumerate(mine):
        for j, c in enumerate(conditions):
            cell = r.cl_conditions.get(c)
            v = cell.score_mean if cell is not None else None
            if _finite(v):
                grid[i, j] = v
    fig = _figure((1.6 + 1.25 * len(conditions), 1.2 + 0.38 * len(mine)))
    ax = fig.add_subplot(1, 1, 1)
    im = ax.imshow(grid, cmap="RdYlGn", vmin=0, vmax=100, aspect="auto")
    for i in range(len(mine)):
        for j in range(len(conditions)):
            v = grid[i, j]
            ax.text(j, i, "-" if np.isnan(v) else f"{v:.0f}", ha="center", va="center", fontsize=8)
    ax.set_xticks(range(len(conditions)), labels=conditions, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(len(mine)), labels=[r.name for r in mine], fontsize=8)
    ax.set_title("Driving score by condition (mean over repetitions)", fontsize=10)
    fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02)
    fig.tight_layout()
    return _save(fig, path)


def breaking_plot(points: list[BreakingPointRecord], path: Path) -> Path | None:
    """Driving score against the latency scale (log x), one line per variant whose breaking point
    was searched; a dot marks each variant's breaking point."""
    mine = [p for p in points if len(p.probes) > 1]
    if not mine:
        return None
    fig = _figure((6.4, 3.8))
    ax = fig.add_subplot(1, 1, 1)
    for p in mine:
        probes = sorted((q for q in p.probes if _finite(q.score_mean)), key=lambda q: q.scale)
        if not probes:
            continue
        line, = ax.plot([q.scale for q in probes], [q.score_mean for q in probes], marker="o", markersize=3,
                        label=f"{p.name} ({p.role}): {p.text}")
        if p.scale is not None:
            at = next((q for q in probes if q.scale == p.scale), None)
            if at is not None:
                ax.plot([at.scale], [at.score_mean], marker="*", markersize=11, color=line.get_color())
    ax.set_xscale("log")
    ax.set_xlabel("latency scale: hardware N x slower than the machine the latency was measured on")
    ax.set_ylabel("driving score (mean over drives)")
    ax.set_ylim(-2, 102)
    ax.set_title("Breaking points: where driving stops being clean (star: the last clean scale)", fontsize=10)
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    return _save(fig, path)


def correlation_plot(rows: list[DecidedVariant], path: Path) -> Path | None:
    pts = [r for r in rows if r.status == "ok" and _finite(r.mse_mean) and r.mse_mean > 0
           and _finite(r.cl_score_mean)]
    if len(pts) < 3:
        return None
    fig = _figure((10.0, 4.2))
    for k, (key, label) in enumerate((("cl_score_mean", "driving score"), ("cl_autonomy_mean", "autonomy (%)"))):
        ax = fig.add_subplot(1, 2, k + 1)
        mine = [r for r in pts if _finite(getattr(r, key))]
        ax.scatter([r.mse_mean for r in mine], [getattr(r, key) for r in mine], s=22, color=POINT_COLOUR, zorder=3)
        ax.set_xscale("log")
        ax.set_xlabel("offline MSE (log)")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
        ax.set_title(f"offline MSE vs {label}", fontsize=10)
    fig.tight_layout()
    return _save(fig, path)
