"""Kinematic planar vehicle commanded by (v, w), as Gazebo's planar-move plugin:
x' = v cos(theta), y' = v sin(theta), theta' = w. A constant command is integrated exactly (an arc),
so the step size never changes the path; optional command limits and first-order actuator lag."""

from __future__ import annotations

import math
from dataclasses import dataclass



@dataclass(frozen=True)
class VehicleLimits:
    v_min: float = 0.0
    v_max: float = 30.0
    w_max: float = 10.0
    lag: float = 0.0  # s, first-order time constant of the actuators (0: commands act at once)


@dataclass
class VehicleState:
    x: float
    y: float
    theta: float
    v: float = 0.0  # executed speed (differs from the command only with lag)
    w: float = 0.0
    odometer: float = 0.0

    @property
    def pose(self) -> tuple[float, float, float]:
        return (self.x, self.y, self.theta)


def arc(x: float, y: float, th: float, v: float, w: float, dt: float) -> tuple[float, float, float]:
    """Exact pose after driving at constant (v, w) for dt."""
    if abs(w) < 1e-9:
        return x + v * dt * math.cos(th), y + v * dt * math.sin(th), th
    th2 = th + w * dt
    r = v / w
    return x + r * (math.sin(th2) - math.sin(th)), y - r * (math.cos(th2) - math.cos(th)), th2


class Vehicle:
    LAG_SUBSTEP = 0.005  # s, integration step when the actuators lag

    def __init__(self, state: VehicleState, limits: VehicleLimits = VehicleLimits()):
        self.state = state
        self.limits = limits
        self.cmd = (0.0, 0.0)

    def command(self, v: float, w: float) -> None:
        lim = self.limits
        v, w = float(v), float(w)  # min/max: np.clip's value on a scalar at a tenth of its cost
        v = min(max(v, lim.v_min), lim.v_max) if math.isfinite(v) else 0.0
        w = min(max(w, -lim.w_max), lim.w_max) if math.isfinite(w) else 0.0
        self.cmd = (v, w)
        if lim.lag <= 0:
            self.state.v, self.state.w = v, w

    def advance(self, dt: float) -> None:
        if dt <= 0:
            return
        st, lag = self.state, self.limits.lag
        if lag <= 0:
            st.x, st.y, st.theta = arc(st.x, st.y, st.theta, st.v, st.w, dt)
            st.odometer += abs(st.v) * dt
            return
        remaining = dt
        while remaining > 1e-12:
            h = min(self.LAG_SUBSTEP, remaining)
            a = 1.0 - math.exp(-h / lag)
            st.v += (self.cmd[0] - st.v) * a
            st.w += (self.cmd[1] - st.w) * a
            st.x, st.y, st.theta = arc(st.x, st.y, st.theta, st.v, st.w, h)
            st.odometer += abs(st.v) * h
            remaining -= h
