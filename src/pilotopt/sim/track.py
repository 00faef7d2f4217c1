"""Track geometry: a closed centre line resampled at uniform arc length, with fast projection.

Everything the simulator measures (progress, lateral deviation, the expert's preview) is a
projection onto this line, so it is computed once, densely, and queried locally per step.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.interpolate import splev, splprep
from scipy.spatial import cKDTree

from pilotopt.errors import BadInputError
from pilotopt.sim.kernels import nearest_in_window

ROAD_HALF_WIDTH = 4.0  # m, asphalt about 8 m wide
LINE_HALF_WIDTH = 0.125  # m, red line about 0.25 m wide
SAMPLE_SPACING = 0.1  # m between dense centre-line samples
MIN_RADIUS = 6.0  # m, tighter than this and the road's inner edge folds over itself


@dataclass(frozen=True)
class Projection:
    """Where a point lies relative to the centre line."""

    index: int  # nearest dense sample
    s: float  # arc length along the line, in [0, length)
    lateral: float  # signed distance, positive to the left of the driving direction


@dataclass
class Track:
    """A closed centre line, sampled every `SAMPLE_SPACING` metres in driving direction."""

    name: str
    points: np.ndarray  # (n, 2) float64
    road_half_width: float = ROAD_HALF_WIDTH
    line_half_width: float = LINE_HALF_WIDTH
    tangents: np.ndarray = field(init=False, repr=False)
    normals: np.ndarray = field(init=False, repr=False)
    curvature: np.ndarray = field(init=False, repr=False)
    s: np.ndarray = field(init=False, repr=False)
    length: float = field(init=False)
    spacing: float = field(init=False)

    def __post_init__(self) -> None:
        pts = np.asarray(self.points, dtype=np.float64)
        nxt = np.roll(pts, -1, axis=0)
        seg = nxt - pts
        seg_len = np.hypot(seg[:, 0], seg[:, 1])
        self.points = pts
        self.length = float(seg_len.sum())
        self.spacing = self.length / len(pts)
        self.s = np.concatenate([[0.0], np.cumsum(seg_len)[:-1]])
        # central differences on the closed loop
        d = (np.roll(pts, -1, axis=0) - np.roll(pts, 1, axis=0)) / 2.0
        dd = np.roll(pts, -1, axis=0) - 2 * pts + np.roll(pts, 1, axis=0)
        speed = np.hypot(d[:, 0], d[:, 1])
        self.tangents = d / speed[:, None]
        self.normals = np.stack([-self.tangents[:, 1], self.tangents[:, 0]], axis=1)
        self.curvature = (d[:, 0] * dd[:, 1] - d[:, 1] * dd[:, 0]) / speed**3
        self._tree = cKDTree(pts)

    # ----------------------------------------------------------------- construction
    @classmethod
    def from_control_points(
        cls,
        name: str,
        control: np.ndarray,
        length: float | None = None,
        smoothing: float = 0.0,
        spacing: float = SAMPLE_SPACING,
    ) -> "Track":
        """Fit a periodic cubic spline through `control` (a closed loop), optionally scale it to
        `length` metres, and resample it uniformly."""
        ctrl = np.asarray(control, dtype=np.float64)
        if np.linalg.norm(ctrl[0] - ctrl[-1]) < 1e-9:
            ctrl = ctrl[:-1]
        ctrl = _drop_duplicates(ctrl)
        if len(ctrl) < 4:
            raise BadInputError(f"circuit '{name}' needs at least 4 distinct points, got {len(ctrl)}")
        closed = np.vstack([ctrl, ctrl[:1]])
        tck, _ = splprep([closed[:, 0], closed[:, 1]], s=smoothing, per=True, k=3)
        # arc length as a function of the spline parameter, from a fine evaluation
        u = np.linspace(0.0, 1.0, max(20000, 200 * len(ctrl)) + 1)
        x, y = splev(u, tck)
        arc = np.concatenate([[0.0], np.cumsum(np.hypot(np.diff(x), np.diff(y)))])
        scale = 1.0 if length is None else length / arc[-1]
        n = max(64, int(round(arc[-1] * scale / spacing)))
        # evaluate the spline itself at uniform arc length: points stay on the smooth curve, so
        # the curvature from finite differences is clean (linear resampling would add kinks)
        target = np.linspace(0.0, arc[-1], n, endpoint=False)
        xs, ys = splev(np.interp(target, arc, u), tck)
        return cls(name=name, points=np.stack([xs, ys], axis=1) * scale)

    @classmethod
    def from_csv(cls, path: Path | str, name: str | None = None) -> "Track":
        """Read a user circuit: CSV of `x,y` centre-line points in metres, one closed loop."""
        path = Path(path)
        name = name or path.stem
        if not path.is_file():
            raise BadInputError(f"circuit file '{path}' does not exist; pass a CSV of x,y points")
        rows: list[tuple[float, float]] = []
        try:
            with path.open(newline="") as fh:
                for lineno, row in enumerate(csv.reader(fh), start=1):
                    if not row or all(not c.strip() for c in row):
                        continue
                    if len(row) < 2:
                        raise BadInputError(f"circuit file '{path}' line {lineno}: expected 'x,y', got {row!r}")
                    try:
                        x, y = float(row[0]), float(row[1])
                    except ValueError:
                        if lineno == 1:  # header
                            continue
                        raise BadInputError(
                            f"circuit file '{path}' line {lineno}: '{row[0]},{row[1]}' is not a pair of numbers"
                        ) from None
                    if not (np.isfinite(x) and np.isfinite(y)):
                        raise BadInputError(
                            f"circuit file '{path}' line {lineno}: NaN or infinite coordinate; every x,y must be finite"
                        )
                    rows.append((x, y))
        except UnicodeDecodeError:
            raise BadInputError(f"circuit file '{path}' is not a text CSV of x,y points") from None
        pts = np.array(rows, dtype=np.float64).reshape(-1, 2)
        validate_centre_line(pts, f"circuit file '{path}'")
        track = cls.from_control_points(name, pts)
        validate_track(track, f"circuit file '{path}'")
        return track

    # ----------------------------------------------------------------- queries
    def reversed(self) -> "Track":
        """The same circuit driven the other way round (clockwise <-> anticlockwise)."""
        pts = self.points[::-1].copy()
        return Track(name=self.name, points=pts, road_half_width=self.road_half_width,
                     line_half_width=self.line_half_width)

    @property
    def signed_area(self) -> float:
        x, y = self.points[:, 0], self.points[:, 1]
        return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y))

    @property
    def is_anticlockwise(self) -> bool:
        return self.signed_area > 0

    def project(self, xy, hint: int | None = None, window: int = 120) -> Projection:
        """Project a point; with `hint` (the last index) only a local window is searched, so the
        car never jumps to a nearby but different part of the track."""
        p = np.asarray(xy, dtype=np.float64)
        n = len(self.points)
        if hint is None:
            _, idx = self._tree.query(p)
            idx = int(idx)
        else:
            idx = int(nearest_in_window(self.points, int(hint), int(window), float(p[0]), float(p[1])))
        rel = p - self.points[idx]
        along = float(rel @ self.tangents[idx])
        lateral = float(rel @ self.normals[idx])
        s = float((self.s[idx] + along) % self.length)
        return Projection(index=idx, s=s, lateral=lateral)

    def project_many(self, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Global projection of many points: (index, s, signed lateral)."""
        xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        _, idx = self._tree.query(xy)
        rel = xy - self.points[idx]
        along = np.einsum("ij,ij->i", rel, self.tangents[idx])
        lateral = np.einsum("ij,ij->i", rel, self.normals[idx])
        return idx, (self.s[idx] + along) % self.length, lateral

    def index_at(self, s: float) -> int:
        return int(round((s % self.length) / self.spacing)) % len(self.points)

    def point_at(self, s: float) -> np.ndarray:
        """Linear interpolation of the centre line at arc length `s` (wraps around)."""
        s = s % self.length
        i = int(np.searchsorted(self.s, s, side="right") - 1)
        j = (i + 1) % len(self.points)
        seg = self.length - self.s[i] if j == 0 else self.s[j] - self.s[i]
        t = (s - self.s[i]) / seg if seg > 0 else 0.0
        return self.points[i] * (1 - t) + self.points[j] * t

    def heading_at(self, index: int) -> float:
        tx, ty = self.tangents[index % len(self.points)]
        return float(np.arctan2(ty, tx))

    def min_radius(self) -> float:
        return float(1.0 / max(np.abs(self.curvature).max(), 1e-9))

    def bounds(self, margin: float = 0.0) -> tuple[float, float, float, float]:
        lo = self.points.min(axis=0) - margin
        hi = self.points.max(axis=0) + margin
        return float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])


# --------------------------------------------------------------------- validation
def validate_centre_line(pts: np.ndarray, what: str) -> None:
    """Reject raw user points that cannot be a closed circuit, naming the problem."""
    if len(pts) < 4:
        raise BadInputError(f"{what} has {len(pts)} points; a closed circuit needs at least 4 x,y points")
    if not np.all(np.isfinite(pts)):
        raise BadInputError(f"{what} contains NaN or infinite coordinates; every x,y must be finite")
    seg = np.hypot(*np.diff(pts, axis=0).T)
    step = float(np.median(seg[seg > 0])) if np.any(seg > 0) else 0.0
    gap = float(np.hypot(*(pts[-1] - pts[0])))
    if step == 0.0:
        raise BadInputError(f"{what}: all points are identical; list the centre line of a closed loop")
    if gap > max(3.0 * step, 1.0):
        raise BadInputError(
            f"{what} is not closed: its last point is {gap:.1f} m from its first; "
            "end the loop where it starts"
        )
    ring = pts if gap > 1e-9 else pts[:-1]
    crossing = _first_self_intersection(ring)
    if crossing is not None:
        raise BadInputError(
            f"{what} is self-intersecting near x={crossing[0]:.1f}, y={crossing[1]:.1f}; "
            "a circuit's centre line must not cross itself"
        )


def validate_track(track: Track, what: str) -> None:
    """Reject smoothed tracks whose road would overlap itself or fold in a corner."""
    if track.length < 50.0:
        raise BadInputError(f"{what}: lap length {track.length:.1f} m is too short (at least 50 m)")
    crossing = _first_self_intersection(track.points[::5])
    if crossing is not None:
        raise BadInputError(
            f"{what} is self-intersecting near x={crossing[0]:.1f}, y={crossing[1]:.1f}; "
            "a circuit's centre line must not cross itself"
        )
    r = track.min_radius()
    if r < MIN_RADIUS:
        i = int(np.argmax(np.abs(track.curvature)))
        x, y = track.points[i]
        raise BadInputError(
            f"{what}: a corner near x={x:.1f}, y={y:.1f} has radius {r:.1f} m; "
            f"corners need a radius of at least {MIN_RADIUS:.0f} m"
        )
    gap = road_clearance(track)
    if gap < 2 * track.road_half_width + 1.0:
        raise BadInputError(
            f"{what}: two parts of the road pass within {gap:.1f} m of each other; "
            f"keep centre lines at least {2 * track.road_half_width + 1.0:.0f} m apart"
        )


def road_clearance(track: Track, radius: float = 30.0) -> float:
    """Smallest distance between two centre-line points that are far apart along the track."""
    pts = track.points[::5]
    s = track.s[::5]
    tree = cKDTree(pts)
    pairs = tree.query_pairs(r=radius, output_type="ndarray")
    if len(pairs) == 0:
        return float("inf")
    ds = np.abs(s[pairs[:, 0]] - s[pairs[:, 1]])
    ds = np.minimum(ds, track.length - ds)
    d = np.hypot(*(pts[pairs[:, 0]] - pts[pairs[:, 1]]).T)
    # points whose straight distance is much shorter than their distance along the track
    far = ds > np.maximum(3.0 * d, 2.0 * radius)
    return float(d[far].min()) if np.any(far) else float("inf")


# --------------------------------------------------------------------- helpers
def _drop_duplicates(pts: np.ndarray) -> np.ndarray:
    keep = np.ones(len(pts), dtype=bool)
    keep[1:] = np.hypot(*np.diff(pts, axis=0).T) > 1e-9
    return pts[keep]


def _first_self_intersection(ring: np.ndarray) -> np.ndarray | None:
    """First crossing of two non-adjacent segments of a closed polyline (vectorized sweep)."""
    a = ring
    b = np.roll(ring, -1, axis=0)
    n = len(a)
    lo = np.minimum(a, b)
    hi = np.maximum(a, b)
    order = np.argsort(lo[:, 0])
    for k, i in enumerate(order):
        # candidates whose x-range overlaps segment i's
        rest = order[k + 1:]
        rest = rest[lo[rest, 0] <= hi[i, 0]]
        if len(rest) == 0:
            continue
        rest = rest[(lo[rest, 1] <= hi[i, 1]) & (hi[rest, 1] >= lo[i, 1])]
        adjacent = (np.abs(rest - i) <= 1) | (np.abs(rest - i) == n - 1)
        rest = rest[~adjacent]
        if len(rest) == 0:
            continue
        p, r = a[i], b[i] - a[i]
        q, sv = a[rest], b[rest] - a[rest]
        denom = r[0] * sv[:, 1] - r[1] * sv[:, 0]
        qp = q - p
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (qp[:, 0] * sv[:, 1] - qp[:, 1] * sv[:, 0]) / denom
            u = (qp[:, 0] * r[1] - qp[:, 1] * r[0]) / denom
        hit = (denom != 0) & (t >= 0) & (t <= 1) & (u >= 0) & (u <= 1)
        if np.any(hit):
            return p + t[hit][0] * r
    return None
