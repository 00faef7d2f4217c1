"""Privileged expert driver: pure pursuit on the true centre line, speed from the curvature ahead.

It produces the datasets' labels, so it keeps v in [6.5, 24] m/s and w in [-7.1, 7.1] rad/s, the
ranges of the real follow-line datasets."""

from __future__ import annotations

import math

import numpy as np

from pilotopt.preprocess import V_MAX, V_MIN, W_MAX, W_MIN
from pilotopt.sim.brains import register_brain
from pilotopt.sim.brains.base import Brain


def speed_profile(curvature: np.ndarray, spacing: float, lat_acc: float, brake: float,
                  smooth_m: float = 3.0, v_min: float = V_MIN, v_max: float = V_MAX) -> np.ndarray:
    """Fastest speed per centre-line sample: lateral acceleration <= lat_acc in curves, and
    deceleration <= brake before them (backward pass over the closed loop)."""
    k = np.abs(curvature)
    win = max(1, int(round(smooth_m / spacing)))
    pad = np.concatenate([k[-win:], k, k[:win]])
    k = np.convolve(pad, np.ones(2 * win + 1) / (2 * win + 1), mode="same")[win:-win]
    v = np.clip(np.sqrt(lat_acc / np.maximum(k, 1e-9)), v_min, v_max)
    n = len(v)
    for _ in range(2):  # two sweeps settle the wrap-around
        for i in range(n - 1, -1, -1):
            nxt = v[(i + 1) % n]
            v[i] = min(v[i], math.sqrt(nxt * nxt + 2 * brake * spacing))
    return v


@register_brain("expert")
class ExpertBrain(Brain):
    name = "expert"
    privileged = True

    def __init__(self, lat_acc: float = 7.0, brake: float = 6.0, lookahead_time: float = 0.3,
                 min_lookahead: float = 2.5, speed_scale: float = 1.0):
        super().__init__()
        self.lat_acc, self.brake = lat_acc, brake
        self.lookahead_time, self.min_lookahead = lookahead_time, min_lookahead
        self.speed_scale = speed_scale
        self._profiles: dict[int, np.ndarray] = {}

    def reset(self, sim) -> None:
        self.sim = sim
        key = id(sim.track)
        if key not in self._profiles:
            self._profiles = {key: speed_profile(sim.track.curvature, sim.track.spacing, self.lat_acc, self.brake)}
        self.profile = self._profiles[key]

    def command_for(self, x: float, y: float, theta: float, v_now: float, hint: int | None) -> tuple[float, float, int]:
        track = self.sim.track
        proj = track.project((x, y), hint)
        v = float(np.clip(self.profile[proj.index] * self.speed_scale, V_MIN, V_MAX))
        ld = max(self.min_lookahead, self.lookahead_time * max(v, v_now))
        tx, ty = track.point_at(proj.s + ld)
        dx, dy = tx - x, ty - y
        # target in the car frame; pure pursuit curvature 2 sin(alpha) / ld
        lateral = -dx * math.sin(theta) + dy * math.cos(theta)
        dist2 = dx * dx + dy * dy
        curv = 2.0 * lateral / max(dist2, 1e-6)
        w = float(np.clip(v * curv, W_MIN, W_MAX))
        return v, w, proj.index

    def step(self, obs=None) -> tuple[float, float]:
        st = self.sim.vehicle.state
        v, w, _ = self.command_for(st.x, st.y, st.theta, st.v, self.sim.progress_index)
        return v, w
