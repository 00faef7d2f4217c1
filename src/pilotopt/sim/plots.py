"""Top-down trajectory plots of closed-loop drives (PNG, matplotlib Agg, no pyplot state).

- `plot_trajectory(result, path)`: one drive, the driven path coloured by |lateral deviation|.
- `plot_trajectories(results, path)`: several drives on one circuit overlaid, one colour per run.
- `trajectory_title(result)`: the default two-line title (circuit, direction, mode, key metrics).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from pilotopt.atomic import atomic_path
from pilotopt.errors import BadInputError

ROAD_COLOUR = "#b8b8b8"
EDGE_COLOUR = "#6e6e6e"
LINE_COLOUR = "#d62728"
DEVIATION_CMAP = "plasma"
DEVIATION_LABEL = "deviation from line (m)"
MIN_DEVIATION_SCALE = 0.05  # m: the colour scale never spans less, so noise is not exaggerated
FIG_SIZE = (8.0, 7.0)  # inches
DPI = 110
SINGLE_AXES = (0.095, 0.07, 0.76, 0.83)  # figure fractions (left, bottom, width, height) of one drive's plot
SINGLE_COLORBAR = (0.875, 0.16, 0.022, 0.65)


# ----------------------------------------------------------------------------- public API
def plot_trajectory(result, path: Path | str, title: str | None = None) -> Path:
    """Write a top-down PNG of one drive: road band, centre line, driven path coloured by
    |lateral| deviation (with colorbar), start and end markers; returns the path written.

    Every drive of a run writes one of these (60 in `make demo`), and most of a plot's cost is the
    parts every drive on a circuit shares (road, grid, ticks and labels: 0.2 of 0.3 s). Those are
    drawn once per circuit and process; a drive's own parts are drawn over a copy of them, in the
    order a full draw uses, so the pixels are the same (`_drawn_over_the_circuit`). A path that
    leaves the circuit's box (new axis limits) or has fewer than two points is drawn in full."""
    path = Path(path)
    xy, lateral = _path_xy(result)
    title = title if title is not None else trajectory_title(result)
    if len(xy) >= 2 and _inside(xy, result.track):
        return _drawn_over_the_circuit(result, xy, lateral, title, path)
    fig = _new_figure(layout=None)
    ax = fig.add_axes(SINGLE_AXES)
    _draw_track(ax, result.track)
    _draw_drive(fig, ax, fig.add_axes(SINGLE_COLORBAR), xy, lateral, _termination(result), title)
    _finish_axes(ax, result.track, [xy])
    return _save(fig, path)


def _draw_drive(fig, ax, cax, xy: np.ndarray, lateral: np.ndarray, termination: str, title: str) -> list:
    """The parts of one drive's plot that are its own: the path, the colour bar, the end markers,
    the legend and the title. Returns the artists added (the title is set, not added)."""
    dev = np.abs(lateral)
    vmax = max(float(dev.max()) if len(dev) else 0.0, MIN_DEVIATION_SCALE)
    norm = Normalize(vmin=0.0, vmax=vmax)
    added = []
    if len(xy) >= 2:
        segments = np.stack([xy[:-1], xy[1:]], axis=1)
        seg_dev = 0.5 * (dev[:-1] + dev[1:])
        lc = LineCollection(segments, cmap=DEVIATION_CMAP, norm=norm, linewidths=2.2,
                            capstyle="round", joinstyle="round", zorder=4)
        lc.set_array(seg_dev)
        ax.add_collection(lc, autolim=False)
        added.append(lc)
        mappable = lc
    else:
        from matplotlib.cm import ScalarMappable

        mappable = ScalarMappable(norm=norm, cmap=DEVIATION_CMAP)
    cbar = fig.colorbar(mappable, cax=cax)
    cbar.set_label(DEVIATION_LABEL)
    before = len(ax.lines)
    _draw_endpoints(ax, xy, termination, colour=None)
    added += ax.lines[before:]
    added.append(ax.legend(loc="upper right", fontsize=8, framealpha=0.85))
    ax.set_title(title, fontsize=10)
    return added


_CIRCUITS: dict[str, tuple] = {}  # circuit digest -> (figure, axes, colour-bar axes, drawn background), a few per process
_MAX_CIRCUITS = 4


def _circuit_key(track) -> str:
    import hashlib

    pts = np.ascontiguousarray(track.points, dtype=np.float64)
    return hashlib.sha1(pts.tobytes() + repr(float(track.road_half_width)).encode()).hexdigest()


def _inside(xy: np.ndarray, track) -> bool:
    """Whether the path stays inside the circuit's own axis limits (`_finish_axes`)."""
    lo, hi = _box(track)
    return bool(np.all(xy.min(axis=0) >= lo) and np.all(xy.max(axis=0) <= hi))


def _box(track, paths: list[np.ndarray] = ()) -> tuple[np.ndarray, np.ndarray]:
    """The data box shown: the road with a 2 m border, widened to any path that leaves it."""
    pts = np.asarray(track.points, dtype=np.float64)
    pad = float(track.road_half_width) + 2.0
    lo, hi = pts.min(axis=0) - pad, pts.max(axis=0) + pad
    for p in paths:
        if len(p):
            lo, hi = np.minimum(lo, p.min(axis=0)), np.maximum(hi, p.max(axis=0))
    return lo, hi


def _circuit_figure(track) -> tuple:
    key = _circuit_key(track)
    known = _CIRCUITS.get(key)
    if known is None:
        fig = _new_figure(layout=None)
        ax = fig.add_axes(SINGLE_AXES)
        _draw_track(ax, track)
        _finish_axes(ax, track, [])
        cax = fig.add_axes(SINGLE_COLORBAR)
        cax.set_visible(False)  # drawn with each drive's colour bar, over the background
        fig.canvas.draw()
        ax.set_autoscale_on(False)  # the limits (equal aspect applied) stay those drawn: a drive's markers move none
        known = (fig, ax, cax, fig.canvas.copy_from_bbox(fig.bbox))
        if len(_CIRCUITS) >= _MAX_CIRCUITS:
            _CIRCUITS.pop(next(iter(_CIRCUITS)))
        _CIRCUITS[key] = known
    return known


def _drawn_over_the_circuit(result, xy: np.ndarray, lateral: np.ndarray, title: str, path: Path) -> Path:
    fig, ax, cax, background = _circuit_figure(result.track)
    canvas = fig.canvas
    canvas.restore_region(background)
    cax.clear()
    cax.set_visible(True)
    added = _draw_drive(fig, ax, cax, xy, lateral, _termination(result), title)
    try:
        renderer = canvas.get_renderer()
        for artist in sorted(added, key=lambda a: a.get_zorder()):  # a full draw's order
            artist.draw(renderer)
        ax.title.draw(renderer)
        cax.draw(renderer)
        _write_png(canvas, path)
    finally:
        for artist in added:
            artist.remove()
        cax.set_visible(False)
        ax.set_title("")
    return path


def plot_trajectories(results: Sequence, path: Path | str, title: str | None = None,
                      labels: Sequence[str] | None = None) -> Path:
    """Write a top-down PNG with several drives on the same circuit overlaid (one colour per run,
    legend with each run's label and key metrics); returns the path written."""
    path = Path(path)
    results = list(results)
    if not results:
        raise BadInputError("no drive results to plot; pass at least one")
    if labels is not None and len(labels) != len(results):
        raise BadInputError(f"got {len(labels)} labels for {len(results)} results; pass one label per result")
    circuits = sorted({str(r.track.name) for r in results})
    if len(circuits) > 1:
        raise BadInputError(f"results are on different circuits ({', '.join(circuits)}); "
                            "overlay runs of one circuit only")

    fig = _new_figure()
    ax = fig.add_subplot(1, 1, 1)
    _draw_track(ax, results[0].track)
    colours = _run_colours(len(results))
    paths = []
    for i, r in enumerate(results):
        xy, _ = _path_xy(r)
        paths.append(xy)
        label = labels[i] if labels is not None else _run_label(r, i)
        m = r.metrics
        label = (f"{label}: {_fmt(m.percentage_completed, '.1f')}%, MAE {_fmt(m.position_deviation_mae, '.3f')} m, "
                 f"{_fmt(m.average_speed, '.1f')} m/s, {_termination(r)}")
        if len(xy):
            # earlier runs are drawn wider underneath, so identical paths still show every colour
            lw = 1.6 + (2.4 * (len(results) - 1 - i) / (len(results) - 1) if len(results) > 1 else 0.0)
            ax.plot(xy[:, 0], xy[:, 1], color=colours[i], lw=lw, alpha=0.9, zorder=4 + i * 0.01,
                    label=label, solid_capstyle="round")
            ax.plot(xy[-1, 0], xy[-1, 1], marker="X", ms=9, color=colours[i], mec="black", mew=0.8,
                    ls="none", zorder=6)
    if paths and len(paths[0]):
        ax.plot(paths[0][0, 0], paths[0][0, 1], marker="o", ms=9, color="white", mec="black",
                mew=0.8, ls="none", zorder=6, label="start")
    ax.legend(loc="upper right", fontsize=7, framealpha=0.85)
    if title is None:
        directions = sorted({str(getattr(r.config, "direction", "?")) for r in results})
        title = f"{results[0].track.name} ({', '.join(directions)}): {len(results)} runs"
    ax.set_title(title, fontsize=10)
    _finish_axes(ax, results[0].track, paths)
    return _save(fig, path)


def trajectory_title(result) -> str:
    """Two lines: circuit · direction · mode · brain, then completion %, MAE, average speed, lap
    time (if any) and the termination reason."""
    cfg = result.config
    m = result.metrics
    brain = _brain_name(result)
    head = f"{getattr(cfg, 'circuit', result.track.name)} · {getattr(cfg, 'direction', '?')} · " \
           f"{getattr(cfg, 'mode', '?')}" + (f" · {brain}" if brain else "")
    if getattr(cfg, "condition", "default") != "default":
        head += f" · {cfg.condition}"
    if m.interventions:
        head += f" · {m.interventions} interventions"
    lap = m.lap_seconds
    tail = (f"completed {_fmt(m.percentage_completed, '.1f')}% · "
            f"MAE {_fmt(m.position_deviation_mae, '.3f')} m · "
            f"avg speed {_fmt(m.average_speed, '.2f')} m/s"
            + (f" · lap {_fmt(lap, '.2f')} s" if lap is not None else "")
            + f" · {_termination(result)}")
    return f"{head}\n{tail}"


# ----------------------------------------------------------------------------- helpers
def _new_figure(layout: str | None = "constrained") -> Figure:
    fig = Figure(figsize=FIG_SIZE, dpi=DPI, layout=layout)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: Path) -> Path:
    fig.canvas.draw()
    _write_png(fig.canvas, path)
    return path


def _write_png(canvas, path: Path) -> None:
    """The drawn canvas as a PNG: RGB when opaque (it always is here), at zlib level 3 (a third of
    the encoding time of savefig's RGBA at level 6, and a smaller file)."""
    from PIL import Image

    rgba = np.asarray(canvas.buffer_rgba())
    image = Image.fromarray(rgba[..., :3].copy() if (rgba[..., 3] == 255).all() else rgba)
    with atomic_path(path) as tmp:
        image.save(tmp, format="png", compress_level=3)


def _path_xy(result) -> tuple[np.ndarray, np.ndarray]:
    traj = result.trajectory
    try:
        x = np.asarray(traj["x"], dtype=np.float64).ravel()
        y = np.asarray(traj["y"], dtype=np.float64).ravel()
    except KeyError as exc:
        raise BadInputError(f"drive result has no '{exc.args[0]}' in its trajectory; cannot plot it") from None
    lateral = np.asarray(traj.get("lateral", np.zeros_like(x)), dtype=np.float64).ravel()
    n = min(len(x), len(y), len(lateral))
    xy = np.stack([x[:n], y[:n]], axis=1)
    ok = np.isfinite(xy).all(axis=1) & np.isfinite(lateral[:n])
    return xy[ok], lateral[:n][ok]


TRACK_SEGMENTS = 600  # drawn: a finer track (circuits hold a point every 0.1 m) costs draw time, not detail


def _draw_track(ax, track) -> None:
    stride = max(1, len(track.points) // TRACK_SEGMENTS)
    pts = np.asarray(track.points, dtype=np.float64)[::stride]
    nrm = np.asarray(track.normals, dtype=np.float64)[::stride]
    hw = float(track.road_half_width)
    left = pts + hw * nrm
    right = pts - hw * nrm
    # one quad per centre-line segment (closed loop): fills correctly even for crossing layouts
    nl, nr = np.roll(left, -1, axis=0), np.roll(right, -1, axis=0)
    quads = np.stack([left, nl, nr, right], axis=1)
    ax.add_collection(PolyCollection(quads, facecolors=ROAD_COLOUR, edgecolors=ROAD_COLOUR,
                                     linewidths=0.6, zorder=1))
    for edge in (left, right):
        closed = np.vstack([edge, edge[:1]])
        ax.plot(closed[:, 0], closed[:, 1], color=EDGE_COLOUR, lw=0.7, zorder=2)
    centre = np.vstack([pts, pts[:1]])
    ax.plot(centre[:, 0], centre[:, 1], color=LINE_COLOUR, lw=0.8, zorder=3, label="centre line")


def _draw_endpoints(ax, xy: np.ndarray, termination: str, colour) -> None:
    if not len(xy):
        return
    ax.plot(xy[0, 0], xy[0, 1], marker="o", ms=9, color="#2ca02c", mec="black", mew=0.8, ls="none",
            zorder=6, label="start")
    ax.plot(xy[-1, 0], xy[-1, 1], marker="X", ms=10, color=colour or "black", mec="white", mew=0.8,
            ls="none", zorder=6, label=f"end: {termination}")


def _finish_axes(ax, track, paths: list[np.ndarray]) -> None:
    lo, hi = _box(track, paths)
    ax.update_datalim(np.array([lo, hi]))
    ax.margins(0.0)
    ax.autoscale_view()
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.grid(True, color="#e4e4e4", lw=0.5, zorder=0)
    ax.set_axisbelow(True)


def _termination(result) -> str:
    return str(result.metrics.termination or "unknown")


def _fmt(value, spec: str) -> str:
    if value is None:
        return "n/a"
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    return format(v, spec) if np.isfinite(v) else "n/a"


def _brain_name(result) -> str | None:
    brain = getattr(result, "brain", None)
    return brain.get("name") if isinstance(brain, dict) else None


def _run_label(result, index: int) -> str:
    cfg = result.config
    name = _brain_name(result) or f"run {index + 1}"
    return f"{name} ({getattr(cfg, 'mode', '?')})"


def _run_colours(n: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["tab10"] if n <= 10 else colormaps["tab20"]
    # skip tab10's red (index 3): it is the centre line's colour
    idx = [i for i in range(cmap.N) if not (cmap.N == 10 and i == 3)]
    return [cmap(idx[i % len(idx)]) for i in range(n)]
