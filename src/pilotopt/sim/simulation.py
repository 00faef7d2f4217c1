"""The simulation state shared by closed-loop runs, the Gymnasium environment and dataset generation:
a vehicle on a track, progress by projection, per-tick records and the end-of-run rules."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pilotopt.sim.appearance import Appearance
from pilotopt.sim.camera import CameraModel, View
from pilotopt.sim.render import Renderer
from pilotopt.sim.track import Track
from pilotopt.sim.vehicle import Vehicle, VehicleLimits, VehicleState

REFERENCE_SPEED = 6.5  # m/s: the reference lap time is a lap at the datasets' slowest speed
TIMEOUT_FACTOR = 1.5


class Termination:
    LAPS = "laps_completed"
    OFF_TRACK = "off_track"
    STUCK = "stuck"
    TIMEOUT = "timeout"
    BRAIN_ERROR = "brain_error"


@dataclass
class SimSettings:
    laps: int = 1
    timeout: float | None = None  # s of sim time; default: reference lap time x 1.5 x laps
    stuck_seconds: float = 10.0  # no 1 m of progress for this long ends the run
    start_s: float = 0.0  # m along the centre line
    start_lateral: float = 0.0  # m left of the line
    start_speed: float = 0.0
    start_heading: float = 0.0  # rad, added to the line's heading at the start
    intervention_distance: float | None = None  # m; beyond it the car is put back on the line


def reference_lap_seconds(track: Track) -> float:
    return track.length / REFERENCE_SPEED


class Simulation:
    """Time advances in pieces (commands may change between camera frames in realtime mode); the
    state is recorded at every camera tick, where the end-of-run rules are checked."""

    def __init__(self, track: Track, camera: CameraModel = CameraModel(),
                 look: Appearance | str = "default", limits: VehicleLimits = VehicleLimits(),
                 settings: SimSettings = SimSettings(), seed: int = 0, renderer: Renderer | None = None):
        self.track, self.camera, self.settings, self.limits = track, camera, settings, limits
        self._renderer, self._look, self._seed = renderer, look, seed
        self.period = camera.period
        self.timeout = settings.timeout or reference_lap_seconds(track) * TIMEOUT_FACTOR * settings.laps
        self.reset()

    # ----------------------------------------------------------------- lifecycle
    def reset(self) -> None:
        st = self.settings
        i = self.track.index_at(st.start_s)
        x, y = self.track.points[i] + self.track.normals[i] * st.start_lateral
        self.vehicle = Vehicle(VehicleState(float(x), float(y), self.track.heading_at(i) + st.start_heading,
                                            v=st.start_speed), self.limits)
        self.vehicle.cmd = (st.start_speed, 0.0)
        self.time = 0.0
        self.tick = 0
        self.progress = 0.0
        self.progress_index = i
        self._last_s = self.track.project((x, y), i).s
        self._best_progress, self._best_time = 0.0, 0.0
        self.lap_times: list[float] = []
        self.interventions: list[float] = []  # sim times the car was put back on the line
        self.termination: str | None = None
        self.records: dict[str, list[float]] = {k: [] for k in ("t", "x", "y", "theta", "lateral", "progress",
                                                                "v", "w", "odometer")}
        self._record()

    @property
    def renderer(self) -> Renderer:
        """Built on first use: a brain that reads no camera never pays for the ground field."""
        if self._renderer is None:
            self._renderer = Renderer(self.track, self.camera, self._look, seed=self._seed)
        return self._renderer

    @property
    def done(self) -> bool:
        return self.termination is not None

    @property
    def pose(self) -> tuple[float, float, float]:
        return self.vehicle.state.pose

    # ----------------------------------------------------------------- stepping
    def command(self, v: float, w: float) -> None:
        self.vehicle.command(v, w)

    def advance_to(self, t_target: float) -> None:
        """Integrate the current command up to `t_target`, recording at every camera tick passed;
        stops early at the tick where the run ends."""
        while not self.done:
            next_tick = (self.tick + 1) * self.period
            if next_tick > t_target + 1e-9:
                break
            self._integrate(next_tick - self.time)
            self.tick += 1
            self.time = next_tick
            self._record()
            self._check_end()
        if not self.done and t_target > self.time:
            self._integrate(t_target - self.time)
            self.time = t_target

    def step(self, v: float, w: float) -> None:
        """Lockstep: command, then one camera period."""
        self.command(v, w)
        self.advance_to((self.tick + 1) * self.period)

    def observe(self, view: View) -> np.ndarray:
        return self.renderer.render_view(view, self.pose, self.tick)

    def frame(self) -> np.ndarray:
        return self.renderer.render_frame(self.pose, self.tick)

    # ----------------------------------------------------------------- internals
    def _integrate(self, dt: float) -> None:
        self.vehicle.advance(dt)
        st = self.vehicle.state
        proj = self.track.project((st.x, st.y), self.progress_index)
        ds = proj.s - self._last_s
        half = self.track.length / 2
        if ds > half:
            ds -= self.track.length
        elif ds < -half:
            ds += self.track.length
        self.progress += ds
        self._last_s = proj.s
        self.progress_index = proj.index
        self._lateral = proj.lateral

    def _record(self) -> None:
        st = self.vehicle.state
        r = self.records
        if self.tick == 0:
            self._lateral = self.track.project((st.x, st.y), self.progress_index).lateral
        r["t"].append(self.time)
        r["x"].append(st.x)
        r["y"].append(st.y)
        r["theta"].append(st.theta)
        r["lateral"].append(self._lateral)
        r["progress"].append(self.progress)
        r["v"].append(st.v)
        r["w"].append(st.w)
        r["odometer"].append(st.odometer)

    def _check_end(self) -> None:
        length = self.track.length
        r = self.records
        # laps: interpolate the crossing time between the last two ticks
        while len(self.lap_times) < self.settings.laps and self.progress >= (len(self.lap_times) + 1) * length:
            goal = (len(self.lap_times) + 1) * length
            p0, p1 = r["progress"][-2], r["progress"][-1]
            t0, t1 = r["t"][-2], r["t"][-1]
            frac = (goal - p0) / (p1 - p0) if p1 > p0 else 1.0
            self.lap_times.append(t0 + frac * (t1 - t0))
        limit = self.settings.intervention_distance
        if limit is not None and abs(self._lateral) > limit and len(self.lap_times) < self.settings.laps:
            self._intervene()
        if len(self.lap_times) >= self.settings.laps:
            self.termination = Termination.LAPS
        elif abs(self._lateral) > self.track.road_half_width:
            self.termination = Termination.OFF_TRACK
        elif self.time >= self.timeout - 1e-9:
            self.termination = Termination.TIMEOUT
        else:
            if self.progress > self._best_progress + 1.0:
                self._best_progress, self._best_time = self.progress, self.time
            if self.time - self._best_time > self.settings.stuck_seconds:
                self.termination = Termination.STUCK

    def _intervene(self) -> None:
        """A safety driver's take-over, as in PilotNet's autonomy test: the car is put back on the
        line at its projected point, heading along it, at the speed it had; the drive goes on."""
        self.interventions.append(self.time)
        st = self.vehicle.state
        i = self.progress_index
        st.x, st.y = (float(c) for c in self.track.points[i])
        st.theta = self.track.heading_at(i)
        self._last_s = self.track.project((st.x, st.y), i).s
        self._lateral = 0.0

    def trajectory(self) -> dict[str, np.ndarray]:
        return {k: np.asarray(v, dtype=np.float64) for k, v in self.records.items()}


def heading_error(track: Track, index: int, theta: float) -> float:
    d = theta - track.heading_at(index)
    return (d + math.pi) % (2 * math.pi) - math.pi
