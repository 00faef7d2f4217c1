"""Camera model and views. A view names the pixels a brain consumes, so the simulator renders only
those (a PilotNet brain needs 132 x 400 source pixels, not 640 x 480) and yet gives the brain
exactly what preprocessing a full frame would."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pilotopt import preprocess as pp


@dataclass(frozen=True)
class CameraModel:
    """Pinhole camera at the car's front, zero pitch: the horizon is at row height/2."""

    width: int = pp.FRAME_W
    height: int = pp.FRAME_H
    hfov: float = 1.57  # rad, as the Gazebo F1 car's camera
    mount_height: float = 0.5  # m above the ground
    mount_forward: float = 1.5  # m ahead of the car's reference point
    fps: float = 20.0

    @property
    def focal(self) -> float:
        return (self.width / 2.0) / math.tan(self.hfov / 2.0)

    @property
    def period(self) -> float:
        return 1.0 / self.fps

    def ray_slopes(self, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per row: downward slope (y/z); per column: rightward slope (x/z), at pixel centres."""
        f = self.focal
        down = (np.asarray(rows, dtype=np.float64) + 0.5 - self.height / 2.0) / f
        right = (np.asarray(cols, dtype=np.float64) + 0.5 - self.width / 2.0) / f
        return down, right


class View:
    """Pixels (rows x cols) of the camera frame a brain needs, and how to turn them into its input."""

    name = "view"
    rows: np.ndarray
    cols: np.ndarray

    def finish(self, grid: np.ndarray) -> np.ndarray:
        """Rendered pixels (len(rows), len(cols), channels) -> the brain's observation."""
        return grid

    def from_full(self, frame: np.ndarray) -> np.ndarray:
        """The same observation from a full camera frame (the brain's own preprocessing)."""
        return self.finish(frame[np.ix_(self.rows, self.cols)])


class FullFrameView(View):
    name = "full"

    def __init__(self, camera: CameraModel = CameraModel()):
        self.rows = np.arange(camera.height)
        self.cols = np.arange(camera.width)

    def from_full(self, frame: np.ndarray) -> np.ndarray:
        return frame


class PilotNetView(View):
    """A model's input image: crop rows, resize (default: the PilotNet road half, 66 x 200). Any
    input contract's geometry works; only the source pixels the resize reads are rendered."""

    name = "pilotnet"

    def __init__(self, camera: CameraModel = CameraModel(), geometry: pp.Geometry = pp.PILOTNET_GEOMETRY):
        self.geometry = geometry
        self.plan = geometry.plan(camera.width) if camera.width == pp.FRAME_W else pp.resize_plan(
            geometry.crop_bottom - geometry.crop_top, camera.width, geometry.height, geometry.width,
            geometry.interpolation)
        self.rows = self.plan.rows + geometry.crop_top
        self.cols = self.plan.cols
        rel = self.plan.rows
        self._row_pos = (np.searchsorted(rel, self.plan.r0), np.searchsorted(rel, self.plan.r1))
        self._col_pos = (np.searchsorted(self.cols, self.plan.c0), np.searchsorted(self.cols, self.plan.c1))

    def finish(self, grid: np.ndarray) -> np.ndarray:
        return pp.apply_resize(grid, self.plan, self._row_pos, self._col_pos)

    def from_full(self, frame: np.ndarray) -> np.ndarray:
        return pp.crop_resize(frame, self.geometry)


class RowsView(View):
    """A few full-width rows (what a line-following colour-mask brain scans)."""

    name = "rows"

    def __init__(self, rows, camera: CameraModel = CameraModel()):
        self.rows = np.asarray(sorted(rows), dtype=np.int64)
        self.cols = np.arange(camera.width)
