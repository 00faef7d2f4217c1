"""Camera renderer: ground-plane ray casting into a precomputed field of lateral offsets.

Why it is fast: with zero pitch, every ground pixel hits the ground at a fixed point of the car's
frame, so per frame a pixel costs one 2x2 transform, one gather of a bilinear cell and one colour
lookup (a per-row table that already holds lighting and anti-aliasing). Why it is exact across
views: a pixel's colour depends only on its own row, column, the pose and the frame index, so a
brain view rendered alone equals the same pixels cut from a full frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from pilotopt.atomic import atomic_path, default_cache_dir, sweep_stale
from pilotopt.errors import PilotoptError
from pilotopt.sim.appearance import Appearance, appearance as parse_appearance
from pilotopt.sim.camera import CameraModel, FullFrameView, View
from pilotopt.sim.kernels import shade_ground, shade_resize
from pilotopt.sim.track import Track

FIELD_CELL = 0.25  # m, grid of the lateral-offset field (bilinear: exact to mm near the line)
FIELD_BAND = 12.0  # m, offsets beyond this are all "far from the road"
FIELD_MARGIN = 60.0  # m of ground around the circuit's bounding box
BIN_WIDTH = 0.005  # m, resolution of the per-row colour tables
NOISE_BANK = 8  # frames of sensor noise, cycled by frame index
WALL_SAMPLES = np.concatenate([np.arange(0.5, 20.0, 0.1), np.arange(20.0, 120.0, 0.5)])


class GroundField:
    """Signed lateral offset to the centre line on a grid, stored as per-cell bilinear coefficients
    (a, b, c, d: value = a + b fx + c fy + d fx fy). Cells that straddle a discontinuity (the
    medial axis between two parts of the track) hold a constant 'far' value instead, so
    interpolation never invents a line in the grass."""

    def __init__(self, track: Track, cell: float = FIELD_CELL, margin: float = FIELD_MARGIN,
                 band: float = FIELD_BAND):
        x0, y0, x1, y1 = track.bounds(margin)
        nx = int(np.ceil((x1 - x0) / cell)) + 2
        ny = int(np.ceil((y1 - y0) / cell)) + 2
        self.x0, self.y0, self.cell, self.band = x0, y0, cell, band
        gx = x0 + np.arange(nx) * cell
        gy = y0 + np.arange(ny) * cell
        nodes = np.stack(np.meshgrid(gx, gy), axis=-1).reshape(-1, 2)
        _, idx = track._tree.query(nodes, distance_upper_bound=band + cell * 2)
        valid = idx < len(track.points)
        val = np.full(len(nodes), band, dtype=np.float64)
        iv = idx[valid]
        rel = nodes[valid] - track.points[iv]
        val[valid] = np.einsum("ij,ij->i", rel, track.normals[iv])
        grid = np.clip(val, -band, band).reshape(ny, nx)
        c00, c01, c10, c11 = grid[:-1, :-1], grid[:-1, 1:], grid[1:, :-1], grid[1:, 1:]
        stack = np.stack([c00, c01, c10, c11], axis=-1)
        jump = stack.max(axis=-1) - stack.min(axis=-1) > 3.0 * cell
        far = np.abs(stack).max(axis=-1)
        stack[jump] = far[jump][:, None]
        a = stack[..., 0]
        b = stack[..., 1] - a
        c = stack[..., 2] - a
        d = stack[..., 3] - stack[..., 2] - stack[..., 1] + a
        self.coef = np.stack([a, b, c, d], axis=-1).reshape(-1, 4).astype(np.float32)
        self.ncx, self.ncy = nx - 1, ny - 1

    def arrays(self) -> dict[str, np.ndarray]:
        return {"coef": self.coef, "grid": np.array([self.x0, self.y0, self.cell, self.band]),
                "cells": np.array([self.ncx, self.ncy])}

    @classmethod
    def from_arrays(cls, arrays) -> "GroundField":
        f = cls.__new__(cls)  # the built numbers, not a build
        f.x0, f.y0, f.cell, f.band = (float(v) for v in arrays["grid"])
        f.ncx, f.ncy = (int(v) for v in arrays["cells"])
        f.coef = np.ascontiguousarray(arrays["coef"], dtype=np.float32)
        if f.coef.shape != (f.ncx * f.ncy, 4):
            raise ValueError(f"coefficients of shape {f.coef.shape} for {f.ncx} x {f.ncy} cells")
        return f

    def lookup(self, gxy: np.ndarray) -> np.ndarray:
        """|offset| at grid coordinates gxy (2, N) (metres / cell from the origin)."""
        np.clip(gxy[0], 0.0, self.ncx - 1e-3, out=gxy[0])
        np.clip(gxy[1], 0.0, self.ncy - 1e-3, out=gxy[1])
        fl = np.floor(gxy)
        frac = gxy - fl
        ij = fl.astype(np.int32)
        flat = ij[1] * self.ncx
        flat += ij[0]
        k = np.take(self.coef, flat, axis=0).T  # (4, N): np.take is ~10x faster than k[flat]
        fx, fy = frac[0], frac[1]
        val = fy * k[3]
        val += k[1]
        val *= fx
        val += k[0]
        val += fy * k[2]
        return np.abs(val, out=val)

    def offset_at(self, xy: np.ndarray) -> np.ndarray:
        """|offset| at world points (N, 2); for tests and ray marching."""
        xy = np.asarray(xy, dtype=np.float32).reshape(-1, 2)
        g = np.stack([(xy[:, 0] - self.x0) / self.cell, (xy[:, 1] - self.y0) / self.cell]).astype(np.float32)
        return self.lookup(g)


_FIELDS: dict[str, GroundField] = {}


FIELD_CACHE_VERSION = 1  # bump when GroundField's arithmetic changes: old files are then never read
FIELD_CACHE_KEEP = 32  # stored fields (17-30 MB each); the least recently written go first


def ground_field(track: Track) -> GroundField:
    """One field per circuit geometry. Building one takes about a second, and every drive and
    recording process needs it, so it is kept in memory and on disk (the data cache,
    `$PILOTOPT_CACHE/ground_fields`), both keyed by the centre line itself."""
    key = _field_key(track)
    if key not in _FIELDS:
        if len(_FIELDS) > 8:
            _FIELDS.clear()
        _FIELDS[key] = _stored_field(track)
    return _FIELDS[key]


def _field_key(track: Track) -> str:
    import hashlib

    h = hashlib.sha256(f"{FIELD_CACHE_VERSION} {FIELD_CELL} {FIELD_MARGIN} {FIELD_BAND}".encode())
    for a in (track.points, track.normals):
        h.update(np.ascontiguousarray(a, dtype=np.float64).tobytes())
    return h.hexdigest()[:24]


def _field_file(track: Track):
    return default_cache_dir() / "ground_fields" / f"{_field_key(track)}.npz"


def _stored_field(track: Track) -> GroundField:
    """The field from the disk cache, else built and stored (a cache that cannot be read or
    written only costs the build)."""
    path = _field_file(track)
    try:
        with np.load(path, allow_pickle=False) as z:
            return GroundField.from_arrays(z)
    except (OSError, ValueError, KeyError):
        pass
    field = GroundField(track)

    try:
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, **field.arrays())
        _trim_field_cache(path.parent, FIELD_CACHE_KEEP)
        sweep_stale(path.parent)  # half-written files of killed writers
    except (OSError, PilotoptError):
        pass
    return field


def _trim_field_cache(folder, keep: int) -> None:
    """At most `keep` stored fields: every edited circuit CSV stores a new one."""
    stored = sorted(folder.glob("*.npz"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in stored[keep:]:
        old.unlink(missing_ok=True)


_COLOUR_TABLES: dict[tuple, np.ndarray] = {}  # Renderer._colour_tables, read-only once built


@dataclass
class _GridPlan:
    """Everything about a (rows, cols) pixel grid that does not change from frame to frame."""

    shape: tuple[int, int]
    first_ground: int  # rows are ascending, so sky rows come first and ground rows after
    car_frame: np.ndarray  # (2, N) float32: forward and rightward ground distance per pixel
    lut_index: np.ndarray  # (N,) int32: row offset into the colour table
    lut: np.ndarray  # (n_ground_rows * nbins,) uint32 packed RGBA
    sky: np.ndarray  # (n_sky_rows,) uint32 packed RGBA
    fwd: np.ndarray  # (n_ground_rows,) forward distance per ground row
    fwd32: np.ndarray  # the same, float32, for the kernel
    right32: np.ndarray  # (n_cols,) rightward slope per column, float32
    down: np.ndarray  # per grid row, downward slope
    right: np.ndarray  # per grid col, rightward slope


class Renderer:
    """Renders camera pixels of a track for a car pose (x, y, heading)."""

    def __init__(self, track: Track, camera: CameraModel = CameraModel(),
                 look: Appearance | str = "default", seed: int = 0):
        self.track = track
        self.camera = camera
        self.look = parse_appearance(look)
        self.field = ground_field(track)
        self.nbins = int(round(self.field.band / BIN_WIDTH))
        self._plans: dict[tuple, _GridPlan] = {}
        rng = np.random.default_rng(seed)
        self._noise = None
        if self.look.pixel_noise > 0:
            self._noise = (rng.standard_normal((NOISE_BANK, camera.height, camera.width), dtype=np.float32)
                           * self.look.pixel_noise)
        self._grain = self._shadow = None
        if self.look.texture > 0:
            self._grain = _smooth_noise(rng, 256, passes=1) * self.look.texture
        if self.look.shadows > 0:
            blobs = _smooth_noise(rng, 128, passes=6)
            self._shadow = (1.0 - self.look.shadows * (blobs > 0.35)).astype(np.float32)

    # ----------------------------------------------------------------- public
    def render(self, pose, rows: np.ndarray, cols: np.ndarray, frame_index: int = 0) -> np.ndarray:
        """The camera pixels at `rows` x `cols` (uint8, (len(rows), len(cols), 3); a strided view)."""
        return self.render_rgba(pose, rows, cols, frame_index)[..., :3]

    def render_rgba(self, pose, rows: np.ndarray, cols: np.ndarray, frame_index: int = 0) -> np.ndarray:
        """Like `render`, as a contiguous (R, C, 4) array whose 4th channel is padding: RGB slices of
        it are strided and 3-5x slower to process, so views resize all four channels."""
        plan = self._plan(rows, cols)
        out32 = np.empty(plan.shape, dtype=np.uint32)  # packed RGBA: one 4-byte write per pixel
        g0 = plan.first_ground
        m, t = self._ground_transform(pose)
        modulate = self.look.texture > 0 or self.look.shadows > 0
        if g0 < plan.shape[0]:
            f = self.field
            shade_ground(plan.fwd32, plan.right32, m, t, f.coef, f.ncx, f.ncy, plan.lut, self.nbins,
                         np.float32(1.0 / BIN_WIDTH), out32[g0:])
            world = (m @ plan.car_frame + t[:, None]) if modulate else None
        if g0 > 0:
            out32[:g0] = plan.sky[:, None]
        rgba = out32.view(np.uint8).reshape(plan.shape + (4,))
        rgb = rgba[..., :3]
        if modulate and g0 < plan.shape[0]:
            ground = rgb[g0:].reshape(-1, 3)
            rgb[g0:] = self._modulate(ground, world).reshape(rgb[g0:].shape)
        if self.look.walls:
            cam_x, cam_y, th = self._camera_pose(pose)
            self._draw_walls(rgb, plan, cam_x, cam_y, np.cos(th), np.sin(th))
        if self._noise is not None:
            noise = self._noise[frame_index % NOISE_BANK][np.ix_(np.asarray(rows), np.asarray(cols))]
            rgba = np.clip(rgba.astype(np.float32) + noise[..., None], 0, 255).astype(np.uint8)
        return rgba

    def render_view(self, view: View, pose, frame_index: int = 0) -> np.ndarray:
        """A brain's observation, rendering only the pixels its view reads. A resizing view of a
        plain look (no texture, shadows, walls or pixel noise) whose pixels are all ground is shaded
        and resized in one pass (kernels.shade_resize: the same bytes, a third less time)."""
        fused = self._fused_view(view)
        if fused is not None:
            return self._shade_resize(view, fused, pose)
        out = view.finish(self.render_rgba(pose, view.rows, view.cols, frame_index))
        return out if out.shape[-1] == 3 and out.flags.c_contiguous else np.ascontiguousarray(out[..., :3])

    def render_frame(self, pose, frame_index: int = 0) -> np.ndarray:
        """The full 640 x 480 RGB camera frame (contiguous uint8)."""
        view = FullFrameView(self.camera)
        return np.ascontiguousarray(self.render(pose, view.rows, view.cols, frame_index))

    # ----------------------------------------------------------------- internals
    def _fused_view(self, view: View) -> _GridPlan | None:
        look = self.look
        if (getattr(view, "plan", None) is None or look.texture > 0 or look.shadows > 0 or look.walls
                or self._noise is not None):
            return None
        plan = self._plan(view.rows, view.cols)
        return plan if plan.first_ground == 0 else None

    def _shade_resize(self, view: View, plan: _GridPlan, pose) -> np.ndarray:
        rp, cp, rs = view._row_pos, view._col_pos, view.plan
        out = np.empty((len(rp[0]), len(cp[0]), 3), dtype=np.uint8)
        m, t = self._ground_transform(pose)
        f = self.field
        shade_resize(plan.fwd32, plan.right32, m, t, f.coef, f.ncx, f.ncy, plan.lut, self.nbins,
                     np.float32(1.0 / BIN_WIDTH), rp[0], rp[1], rs.wr, cp[0], cp[1], rs.wc, out)
        return out

    def _ground_transform(self, pose) -> tuple[np.ndarray, np.ndarray]:
        """(m, t): car-frame metres (forward, right) -> field-grid coordinates, m @ p + t."""
        cam_x, cam_y, th = self._camera_pose(pose)
        c, s = np.cos(th), np.sin(th)
        inv = 1.0 / self.field.cell
        m = np.array([[c * inv, s * inv], [s * inv, -c * inv]], dtype=np.float32)
        t = np.array([(cam_x - self.field.x0) * inv, (cam_y - self.field.y0) * inv], dtype=np.float32)
        return m, t

    def _camera_pose(self, pose):
        x, y, th = float(pose[0]), float(pose[1]), float(pose[2])
        off = self.camera.mount_forward
        return x + off * np.cos(th), y + off * np.sin(th), th

    def _plan(self, rows, cols) -> _GridPlan:
        rows = np.asarray(rows, dtype=np.int64)
        cols = np.asarray(cols, dtype=np.int64)
        key = (rows.tobytes(), cols.tobytes())
        plan = self._plans.get(key)
        if plan is None:
            plan = self._build_plan(rows, cols)
            self._plans[key] = plan
        return plan

    def _build_plan(self, rows: np.ndarray, cols: np.ndarray) -> _GridPlan:
        cam = self.camera
        down, right = cam.ray_slopes(rows, cols)
        if np.any(np.diff(rows) <= 0) or np.any(np.diff(cols) <= 0):
            raise ValueError("rows and cols of a view must be strictly ascending")
        ground_rows = np.nonzero(down > 0)[0]
        first_ground = int(ground_rows[0]) if len(ground_rows) else len(rows)
        fwd = cam.mount_height / down[ground_rows]
        fwd_grid = np.repeat(fwd, len(cols))
        right_grid = (fwd[:, None] * right[None, :]).ravel()
        car_frame = np.stack([fwd_grid, right_grid]).astype(np.float32)
        lut = self._colour_tables(fwd / cam.focal)
        lut_index = np.repeat(np.arange(len(ground_rows), dtype=np.int32) * self.nbins, len(cols))
        sky = self._sky_colours(rows[:first_ground])
        return _GridPlan((len(rows), len(cols)), first_ground, car_frame, lut_index, lut, sky,
                         fwd, fwd.astype(np.float32), right.astype(np.float32), down, right)

    def _colour_tables(self, footprint: np.ndarray) -> np.ndarray:
        """Per ground row, the colour of a pixel whose centre is |offset| d from the line: the
        pixel's box filter over line, asphalt and grass (anti-aliased), times the lighting. Kept
        per process: every drive of a look on a track needs the same tables (40 ms to build)."""
        key = (repr(self.look), self.track.line_half_width, self.track.road_half_width, self.nbins,
               footprint.tobytes())
        lut = _COLOUR_TABLES.get(key)
        if lut is None:
            if len(_COLOUR_TABLES) >= 64:
                _COLOUR_TABLES.clear()
            lut = _COLOUR_TABLES[key] = self._build_colour_tables(footprint)
        return lut

    def _build_colour_tables(self, footprint: np.ndarray) -> np.ndarray:
        look, tr = self.look, self.track
        d = (np.arange(self.nbins) + 0.5) * BIN_WIDTH
        fp = np.maximum(footprint, BIN_WIDTH)[:, None]
        line = _coverage(d[None, :], fp, tr.line_half_width)
        road = _coverage(d[None, :], fp, tr.road_half_width)
        grass_c = np.array(look.grass_color, dtype=np.float64)
        asphalt_c = np.array(look.asphalt_color, dtype=np.float64)
        line_c = np.array(look.line_color, dtype=np.float64)
        col = (grass_c * (1 - road)[..., None] + asphalt_c * (road - line)[..., None]
               + line_c * line[..., None])
        col *= look.brightness
        rgb = np.clip(np.floor(col + 0.5), 0, 255).astype(np.uint8).reshape(-1, 3)
        rgba = np.zeros((len(rgb), 4), dtype=np.uint8)
        rgba[:, :3] = rgb
        return rgba.view(np.uint32).ravel()  # one 4-byte gather per pixel

    def _sky_colours(self, rows: np.ndarray) -> np.ndarray:
        horizon = self.camera.height / 2.0
        t = np.clip((rows + 0.5) / horizon, 0.0, 1.0)[:, None]
        col = np.array(self.look.sky_top) * (1 - t) + np.array(self.look.sky_horizon) * t
        col *= self.look.brightness
        rgba = np.zeros((len(rows), 4), dtype=np.uint8)
        rgba[:, :3] = np.clip(np.floor(col + 0.5), 0, 255).astype(np.uint8)
        return rgba.view(np.uint32).ravel()

    def _modulate(self, ground: np.ndarray, gxy: np.ndarray) -> np.ndarray:
        """World-fixed asphalt/grass grain and shadow patches (they move with the world, not the
        camera, as real textures do)."""
        factor = np.ones(gxy.shape[1], dtype=np.float32)
        cell = self.field.cell
        if self._grain is not None:
            texel = 0.08
            ij = np.floor(gxy * (cell / texel)).astype(np.int64) % self._grain.shape[0]
            factor += self._grain[ij[1], ij[0]]
        if self._shadow is not None:
            texel = 1.0
            ij = np.floor(gxy * (cell / texel)).astype(np.int64) % self._shadow.shape[0]
            factor *= self._shadow[ij[1], ij[0]]
        return np.clip(ground.astype(np.float32) * factor[:, None] + 0.5, 0, 255).astype(np.uint8)

    def _draw_walls(self, out, plan: _GridPlan, cam_x, cam_y, c, s) -> None:
        """March each column's ground ray to the first point past the wall offset; pixels whose
        ray passes that point below the wall's top see the wall."""
        look, cam = self.look, self.camera
        f = WALL_SAMPLES[:, None]  # forward distance samples
        xs = cam_x + f * (c + plan.right[None, :] * s)
        ys = cam_y + f * (s - plan.right[None, :] * c)
        d = self.field.offset_at(np.stack([xs.ravel(), ys.ravel()], axis=1)).reshape(xs.shape)
        hit = d >= look.wall_offset
        first = np.where(hit.any(axis=0), hit.argmax(axis=0), -1)
        wall_fwd = np.where(first >= 0, WALL_SAMPLES[np.maximum(first, 0)], np.inf)
        # ray height at the wall: h - down * fwd (rows above the horizon have down < 0)
        height = cam.mount_height - plan.down[:, None] * wall_fwd[None, :]
        ground_fwd = np.full(len(plan.down), np.inf)
        ground_fwd[plan.first_ground:] = plan.fwd
        behind_wall = ground_fwd[:, None] > wall_fwd[None, :]
        is_wall = behind_wall & (height < look.wall_height) & np.isfinite(wall_fwd)[None, :]
        shade = np.clip(1.0 - wall_fwd / 200.0, 0.6, 1.0)[None, :, None]
        colour = np.array(look.wall_color, dtype=np.float64)[None, None, :] * shade * look.brightness
        colour = np.broadcast_to(np.clip(np.floor(colour + 0.5), 0, 255).astype(np.uint8), out.shape)
        out[is_wall] = colour[is_wall]


def _coverage(d: np.ndarray, fp: np.ndarray, half: float) -> np.ndarray:
    """Share of a pixel box [d - fp/2, d + fp/2] inside the band [-half, half]."""
    lo = np.maximum(d - fp / 2, -half)
    hi = np.minimum(d + fp / 2, half)
    return np.clip(hi - lo, 0.0, None) / fp


def _smooth_noise(rng: np.random.Generator, size: int, passes: int) -> np.ndarray:
    """Tileable smooth noise in about [-1, 1] (box-blurred white noise, wraps at the edges)."""
    a = rng.standard_normal((size, size))
    for _ in range(passes):
        a = (a + np.roll(a, 1, 0) + np.roll(a, -1, 0) + np.roll(a, 1, 1) + np.roll(a, -1, 1)) / 5.0
    return (a / (3 * a.std() + 1e-9)).astype(np.float32)


@lru_cache(maxsize=1)
def default_camera() -> CameraModel:
    return CameraModel()
