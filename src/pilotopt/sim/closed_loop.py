"""Closed-loop runs: a brain drives a circuit in `lockstep` or `realtime` timing and the run is
scored with the spec's metrics.

- lockstep: the simulation waits for the brain; the drive is deterministic.
- realtime: a command computed from the frame at sim time t acts at t + latency (measured wall time
  of the brain step x `latency_scale`, or a fixed `latency`), and the brain's next frame is the first
  camera frame at or after that. A slow brain steers late and less often, as on a real car.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np

from pilotopt.errors import BadInputError, one_line
from pilotopt.sim.brains.base import Brain
from pilotopt.sim.camera import CameraModel, PilotNetView, View
from pilotopt.sim.circuits import load_circuit, parse_direction
from pilotopt.sim.metrics import brain_metrics, path_metrics
from pilotopt.sim.simulation import SimSettings, Simulation, Termination
from pilotopt.sim.vehicle import VehicleLimits

MODES = ("lockstep", "realtime")
RESULT_SCHEMA = "pilotopt.drive/1"


@dataclass
class DriveConfig:
    circuit: str = "simple"
    direction: str = "anticlockwise"
    mode: str = "lockstep"
    laps: int = 1
    latency: float | None = None  # s, fixed latency in realtime mode (None: measured)
    latency_scale: float = 1.0  # emulate slower hardware: measured latency x this
    look: str = "default"
    seed: int = 0
    timeout: float | None = None
    stuck_seconds: float = 10.0
    warmup_steps: int = 3  # untimed brain calls before the run (JIT, caches)
    video_every: int = 0  # keep every k-th full frame for a video (0: none)
    camera_view: str | None = None  # render this view for a brain without one ('pilotnet', 'full')
    limits: VehicleLimits = field(default_factory=VehicleLimits)

    def validate(self) -> None:
        if self.mode not in MODES:
            raise BadInputError(f"unknown mode '{self.mode}'; use lockstep or realtime")
        self.direction = parse_direction(self.direction)
        if self.laps < 1:
            raise BadInputError(f"laps must be at least 1, got {self.laps}")
        if self.latency is not None and self.latency < 0:
            raise BadInputError(f"latency must be >= 0 s, got {self.latency}")
        if self.video_every < 0:
            raise BadInputError(f"video_every must be >= 0, got {self.video_every}")
        if self.latency_scale <= 0:
            raise BadInputError(f"latency scale must be > 0, got {self.latency_scale}")


@dataclass
class DriveResult:
    config: DriveConfig
    brain: dict
    metrics: dict
    trajectory: dict[str, np.ndarray]
    steps: dict[str, np.ndarray]
    frames: list[np.ndarray]
    track: object

    def to_json(self) -> dict:
        cfg = asdict(self.config)
        return {"schema": RESULT_SCHEMA, "config": cfg, "brain": self.brain, "metrics": self.metrics,
                "circuit": {"name": self.track.name, "length": self.track.length}}


def _extra_view(name: str | None, camera: CameraModel) -> View | None:
    if name is None:
        return None
    from pilotopt.sim.camera import FullFrameView

    views = {"pilotnet": PilotNetView, "full": FullFrameView}
    if name not in views:
        raise BadInputError(f"unknown camera view '{name}'; use {', '.join(views)}")
    return views[name](camera)


def drive(brain: Brain, config: DriveConfig | None = None,
          on_tick: Callable[[Simulation], None] | None = None) -> DriveResult:
    """Drive `brain` on the configured circuit until the laps are done or the run ends."""
    cfg = config or DriveConfig()
    cfg.validate()
    track = load_circuit(cfg.circuit, cfg.direction)
    camera = CameraModel()
    sim = Simulation(track, camera, cfg.look, cfg.limits,
                     SimSettings(laps=cfg.laps, timeout=cfg.timeout, stuck_seconds=cfg.stuck_seconds),
                     seed=cfg.seed)
    view = brain.view or _extra_view(cfg.camera_view, camera)
    brain.reset(sim)
    for _ in range(cfg.warmup_steps):
        brain.step(sim.observe(view) if view is not None else None)
    brain.reset(sim)

    steps = {"t": [], "step_s": [], "inference_s": [], "v": [], "w": []}
    frames: list[np.ndarray] = []
    period = sim.period
    wall0 = time.perf_counter()
    error = None
    while not sim.done:
        t_frame = sim.time
        if cfg.video_every and sim.tick % cfg.video_every == 0:
            frames.append(sim.frame())
        obs = sim.observe(view) if view is not None else None
        t0 = time.perf_counter()
        try:
            v, w = brain.step(obs)
        except Exception as exc:  # a model runtime that crashes ends the run, scored as such
            error = one_line(exc)
            sim.termination = Termination.BRAIN_ERROR
            break
        step_s = time.perf_counter() - t0
        steps["t"].append(t_frame)
        steps["step_s"].append(step_s)
        steps["inference_s"].append(brain.last_inference_s)
        steps["v"].append(v)
        steps["w"].append(w)
        if cfg.mode == "lockstep":
            sim.command(v, w)
            sim.advance_to(t_frame + period)
        else:
            latency = cfg.latency if cfg.latency is not None else step_s * cfg.latency_scale
            t_effect = t_frame + latency
            sim.advance_to(t_effect)  # the old command still acts while the brain thinks
            if sim.done:
                break
            sim.command(v, w)
            next_frame = math.ceil(t_effect / period - 1e-9) * period
            sim.advance_to(max(next_frame, t_frame + period))
        if on_tick is not None:
            on_tick(sim)
    wall = time.perf_counter() - wall0

    rec = sim.trajectory()
    metrics = path_metrics(track, rec["t"], rec["lateral"], rec["progress"], rec["odometer"], sim.lap_times)
    metrics.update(brain_metrics(steps["step_s"], steps["inference_s"], list(zip(steps["v"], steps["w"])),
                                 period))
    metrics["real_time_factor"] = metrics["sim_seconds"] / wall if wall > 0 else None
    metrics["wall_seconds"] = wall
    metrics["termination"] = sim.termination
    metrics["off_track"] = sim.termination == Termination.OFF_TRACK
    metrics["error"] = error
    return DriveResult(cfg, brain.describe(), metrics, rec,
                       {k: np.asarray(v, dtype=np.float64) if k != "inference_s" else np.asarray(
                           [np.nan if x is None else x for x in v]) for k, v in steps.items()},
                       frames, track)
