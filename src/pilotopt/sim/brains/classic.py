"""Image-based classic brain, as Behavior Metrics' explicit follow-line brain: a colour mask of
the line in a few image rows and a PD controller on its horizontal offset. No privileged state."""

from __future__ import annotations

import numpy as np

from pilotopt.preprocess import V_MIN
from pilotopt.sim.brains import register_brain
from pilotopt.sim.brains.base import Brain
from pilotopt.sim.camera import RowsView


def line_mask(pixels: np.ndarray, line: str = "red") -> np.ndarray:
    """Boolean mask of line-coloured pixels (red: strong R, weak G/B; white: all bright)."""
    p = pixels.astype(np.int16)
    r, g, b = p[..., 0], p[..., 1], p[..., 2]
    if line == "white":
        return (r > 200) & (g > 200) & (b > 200)
    return (r > 120) & (r - g > 70) & (r - b > 70)


@register_brain("classic")
class ClassicBrain(Brain):
    name = "classic"

    FAR_ROW, NEAR_ROW = 262, 320

    def __init__(self, line: str = "red", kp: float = 6.0, kd: float = 4.0, v_fast: float = 11.0,
                 v_slow: float = V_MIN, fps: float = 20.0):
        super().__init__()
        self.view = RowsView([self.FAR_ROW, self.NEAR_ROW])
        self.line, self.kp, self.kd = line, kp, kd
        self.v_fast, self.v_slow, self.dt = v_fast, v_slow, 1.0 / fps
        self.reset(None)

    def reset(self, sim) -> None:
        self.prev_err = 0.0
        self.last = (self.v_slow, 0.0)

    def _offset(self, row: np.ndarray) -> float | None:
        cols = np.nonzero(line_mask(row, self.line))[0]
        if len(cols) == 0:
            return None
        width = row.shape[0]
        return (cols.mean() + 0.5 - width / 2.0) / (width / 2.0)  # -1 (left) .. 1 (right)

    def step(self, obs: np.ndarray) -> tuple[float, float]:
        far = self._offset(obs[0])
        near = self._offset(obs[1])
        if far is None and near is None:  # line lost: keep turning the same way, slowly
            return self.v_slow, self.last[1]
        err = far if far is not None else near
        if near is not None and far is not None:
            err = 0.7 * far + 0.3 * near
        derr = (err - self.prev_err) / self.dt
        self.prev_err = err
        w = -(self.kp * err + self.kd * derr * self.dt)
        v = self.v_fast - (self.v_fast - self.v_slow) * min(1.0, abs(err) * 4.0)
        self.last = (v, w)
        return v, w
