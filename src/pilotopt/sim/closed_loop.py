"""Closed-loop runs: a brain drives a circuit in `lockstep` or `realtime` timing and the run is
scored with the spec's metrics.

- lockstep: the simulation waits for the brain; the drive is deterministic.
- realtime: a command computed from the frame at sim time t acts at t + latency, and the brain's next
  frame is the first camera frame at or after that. A slow brain steers late and less often, as on a
  real car. The latency is one of:
  - `distribution` (reproducible): drawn, with the drive's seed, from `latency_samples` (the
    variant's measured brain-step latencies, from the offline evaluation) x `latency_scale`; the same
    variant, circuit, condition and seed give the same trajectory on any machine;
  - `wall` (measured): the wall time of this brain step x `latency_scale`, which depends on the
    machine and its load at that moment;
  - `fixed`: `latency` seconds.

Repetitions (`repetition` > 0) start from a seeded point along the lap with a small offset and
heading error, and add mild sensor noise, as Behavior Metrics' repetitions; repetition 0 is the
canonical start. A `condition` (sim.conditions) changes the look, the camera image, the actuators
or the latency scale. With `interventions` on, a car more than 1 m off the line is put back on it
and drives on (PilotNet's autonomy test) instead of the run ending when it leaves the road.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Callable

import numpy as np

from pilotopt.errors import BadInputError, one_line
from pilotopt.records import DriveMetrics, DriveQuality, PathMetrics
from pilotopt.sim.brains.base import Brain
from pilotopt.sim.camera import CameraModel, FullFrameView, PilotNetView, View
from pilotopt.sim.circuits import load_circuit, parse_direction
from pilotopt.sim.conditions import parse_condition
from pilotopt.sim.conditions.camera_noise import GaussianBank
from pilotopt.sim.metrics import brain_metrics, path_metrics
from pilotopt.sim.score import (FORMULAS, INTERVENTION_DISTANCE, autonomy, bm_position_deviation, driving_score,
                                excursions)
from pilotopt.sim.simulation import SimSettings, Simulation, Termination
from pilotopt.sim.vehicle import VehicleLimits

MODES = ("lockstep", "realtime")
LATENCY_SOURCES = ("distribution", "wall", "fixed", "none")
RESULT_SCHEMA = "pilotopt.drive/2"
REPEAT_START_OFFSET = 0.3  # m, largest initial offset from the line of a repetition
REPEAT_START_HEADING = 0.05  # rad, largest initial heading error of a repetition
REPEAT_SENSOR_NOISE = 2.0  # std of the camera noise a repetition adds, 0-255 units


@dataclass
class DriveConfig:
    circuit: str = "simple"
    direction: str = "anticlockwise"
    mode: str = "lockstep"
    laps: int = 1
    latency: float | None = None  # s, fixed latency in realtime mode (None: samples or wall time)
    latency_samples: list[float] | None = None  # s, measured brain-step latencies to draw from
    latency_scale: float = 1.0  # emulate slower hardware: latency x this
    condition: str = "default"  # sim.conditions spec
    repetition: int = 0  # 0: the canonical start; k > 0: a seeded start and sensor noise
    interventions: bool = False  # put the car back on the line instead of ending the run
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
        if self.repetition < 0:
            raise BadInputError(f"repetition must be >= 0, got {self.repetition}")
        if self.latency_samples is not None and (len(self.latency_samples) == 0
                                                 or min(self.latency_samples) < 0):
            raise BadInputError("latency samples must be a non-empty list of seconds >= 0")
        parse_condition(self.condition)

    @property
    def latency_source(self) -> str:
        if self.mode != "realtime":
            return "none"
        if self.latency is not None:
            return "fixed"
        return "distribution" if self.latency_samples else "wall"


@dataclass
class DriveResult:
    config: DriveConfig
    brain: dict
    metrics: DriveMetrics
    trajectory: dict[str, np.ndarray]
    steps: dict[str, np.ndarray]
    frames: list[np.ndarray]
    track: object

    def to_json(self) -> dict:
        cfg = asdict(self.config)
        samples = cfg.pop("latency_samples")
        cfg["latency_samples_n"] = len(samples) if samples else 0
        cfg["latency_source"] = self.config.latency_source
        return {"schema": RESULT_SCHEMA, "config": cfg, "brain": self.brain, "metrics": self.metrics.to_json(),
                "circuit": {"name": self.track.name, "length": self.track.length}}


def drive_quality(lateral, path: PathMetrics, sim: Simulation, cfg: DriveConfig) -> DriveQuality:
    """Interventions, autonomy, the driving score and BM's deviation formula (sim.score), from the
    path's figures (`sim.metrics.path_metrics`)."""
    n = len(sim.interventions) if cfg.interventions else excursions(lateral)
    auto = autonomy(n, path.sim_seconds)
    completion = path.completed_distance / (sim.track.length * cfg.laps)
    return DriveQuality(interventions=n, interventions_mode=cfg.interventions, autonomy=auto,
                        driving_score=driving_score(completion, auto, path.position_deviation_mae),
                        bm_position_deviation=bm_position_deviation(lateral), score_version=FORMULAS["version"])


def _extra_view(name: str | None, camera: CameraModel) -> View | None:
    if name is None:
        return None

    views = {"pilotnet": PilotNetView, "full": FullFrameView}
    if name not in views:
        raise BadInputError(f"unknown camera view '{name}'; use {', '.join(views)}")
    return views[name](camera)


class DriveRun:
    """One drive, advanced one brain step at a time: `observation()` gives the frame the brain
    sees now, `apply(v, w, ...)` acts on its command, `result()` scores the run. `drive` steps one
    car; `drive_many` steps K cars and calls their brains together, so both give a car the same
    trajectory: nothing a drive measures depends on what else was stepped beside it."""

    def __init__(self, brain: Brain, cfg: DriveConfig, on_tick: Callable[[Simulation], None] | None = None,
                 warmup: bool = True):
        cfg.validate()
        self.brain, self.cfg, self.on_tick = brain, cfg, on_tick
        self.cond = cond = parse_condition(cfg.condition)
        self.track = track = load_circuit(cfg.circuit, cfg.direction)
        camera = CameraModel()
        settings = SimSettings(laps=cfg.laps, timeout=cfg.timeout, stuck_seconds=cfg.stuck_seconds,
                               intervention_distance=INTERVENTION_DISTANCE if cfg.interventions else None)
        self.sensor_noise = 0.0
        if cfg.repetition > 0:  # a seeded start and sensor noise, the same for every variant
            start = np.random.default_rng([cfg.seed, cfg.repetition, 1])
            settings.start_s = float(start.uniform(0.0, track.length))
            settings.start_lateral = float(start.uniform(-REPEAT_START_OFFSET, REPEAT_START_OFFSET))
            settings.start_heading = float(start.uniform(-REPEAT_START_HEADING, REPEAT_START_HEADING))
            self.sensor_noise = REPEAT_SENSOR_NOISE
        look = cfg.look if cond.look == "default" else (
            cond.look if cfg.look == "default" else f"{cfg.look}+{cond.look}")
        limits = cfg.limits if cond.actuator_lag <= 0 else replace(cfg.limits, lag=cond.actuator_lag)
        self.sim = sim = Simulation(track, camera, look, limits, settings, seed=cfg.seed)
        self.view = brain.view or _extra_view(cfg.camera_view, camera)
        brain.reset(sim)
        if warmup:
            for _ in range(cfg.warmup_steps):
                brain.step(sim.observe(self.view) if self.view is not None else None)
            brain.reset(sim)

        self.scale = cfg.latency_scale * cond.latency_scale
        self._draw = np.random.default_rng([cfg.seed, cfg.repetition, 2])
        self._noise_rng = np.random.default_rng([cfg.seed, cfg.repetition, 3])
        self._sensor = GaussianBank(np.random.default_rng([cfg.seed, cfg.repetition, 4]))
        self._samples = np.asarray(cfg.latency_samples, dtype=np.float64) if cfg.latency_samples else None
        self.source = cfg.latency_source
        self.steps: dict[str, list] = {"t": [], "step_s": [], "inference_s": [], "v": [], "w": [], "latency_s": []}
        self.frames: list[np.ndarray] = []
        self.error: str | None = None
        self.wall = 0.0  # wall seconds this car's steps cost (drive_many: its share of each batched call)
        self._t_frame = 0.0

    @property
    def done(self) -> bool:
        return self.sim.done

    def observation(self) -> np.ndarray | None:
        """The camera frame of this brain step (and a video frame when one is due)."""
        sim = self.sim
        self._t_frame = sim.time
        if self.cfg.video_every and sim.tick % self.cfg.video_every == 0:
            self.frames.append(sim.frame())
        if self.view is None:
            return None
        obs = sim.observe(self.view)
        if self.sensor_noise > 0:
            obs = self._sensor.add(obs, self.sensor_noise)
        return self.cond.noisy(obs, self._noise_rng)

    def fail(self, exc: Exception) -> None:
        """The brain raised: the run ends there, scored as such (a crashing runtime)."""
        self.error = one_line(exc)
        self.sim.termination = Termination.BRAIN_ERROR

    def apply(self, v: float, w: float, step_s: float, inference_s: float | None) -> None:
        """Act on the command computed from the last observation, `step_s` wall seconds later."""
        sim, cfg, steps = self.sim, self.cfg, self.steps
        t_frame, period = self._t_frame, sim.period
        steps["t"].append(t_frame)
        steps["step_s"].append(step_s)
        steps["inference_s"].append(inference_s)
        steps["v"].append(v)
        steps["w"].append(w)
        if cfg.mode == "lockstep":
            steps["latency_s"].append(0.0)
            sim.command(v, w)
            sim.advance_to(t_frame + period)
        else:
            if self.source == "fixed":
                latency = cfg.latency
            elif self.source == "distribution":
                latency = float(self._samples[self._draw.integers(len(self._samples))]) * self.scale
            else:
                latency = step_s * self.scale
            steps["latency_s"].append(latency)
            t_effect = t_frame + latency
            sim.advance_to(t_effect)  # the old command still acts while the brain thinks
            if not sim.done:
                sim.command(v, w)
                next_frame = math.ceil(t_effect / period - 1e-9) * period
                sim.advance_to(max(next_frame, t_frame + period))
        if self.on_tick is not None:
            self.on_tick(sim)

    def result(self) -> DriveResult:
        sim, cfg, steps, track, wall = self.sim, self.cfg, self.steps, self.track, self.wall
        rec = sim.trajectory()
        path = path_metrics(track, rec["t"], rec["lateral"], rec["progress"], rec["odometer"], sim.lap_times)
        timing = brain_metrics(steps["step_s"], steps["inference_s"], list(zip(steps["v"], steps["w"])), sim.period)
        sim_seconds = path.sim_seconds
        emulated = {}
        if self.source in ("distribution", "fixed") and steps["latency_s"]:
            # what the car experienced; the same on any machine, unlike the wall-time figures
            mean_latency = float(np.mean(steps["latency_s"]))
            emulated = {"mean_emulated_latency_ms": mean_latency * 1000.0,
                        "emulated_brain_frequency": float(len(steps["t"]) / sim_seconds) if sim_seconds > 0 else None,
                        # the brain's rate as the car saw it (1 / mean latency), reproducible and free of
                        # whatever else ran beside this drive; the wall-clock rate of this process beside it
                        "wall_brain_iterations_frequency": timing.brain_iterations_frequency,
                        "brain_iterations_frequency": 1.0 / mean_latency if mean_latency > 0 else None}
        metrics = DriveMetrics(**{
            **path.to_json(), **timing.to_json(), **drive_quality(rec["lateral"], path, sim, cfg).to_json(),
            "latency_source": self.source,
            "latency_scale": self.scale if cfg.mode == "realtime" else None, "condition": self.cond.spec,
            "repetition": cfg.repetition, **emulated, "real_time_factor": sim_seconds / wall if wall > 0 else None,
            "wall_seconds": wall, "termination": sim.termination,
            "off_track": sim.termination == Termination.OFF_TRACK, "error": self.error})
        return DriveResult(cfg, self.brain.describe(), metrics, rec,
                           {k: np.asarray(v, dtype=np.float64) if k != "inference_s" else np.asarray(
                               [np.nan if x is None else x for x in v]) for k, v in steps.items()},
                           self.frames, track)


def drive(brain: Brain, config: DriveConfig | None = None,
          on_tick: Callable[[Simulation], None] | None = None) -> DriveResult:
    """Drive `brain` on the configured circuit until the laps are done or the run ends."""
    run = DriveRun(brain, config or DriveConfig(), on_tick)
    wall0 = time.perf_counter()
    while not run.done:
        obs = run.observation()
        t0 = time.perf_counter()
        try:
            v, w = run.brain.step(obs)
        except Exception as exc:  # a model runtime that crashes ends the run, scored as such
            run.fail(exc)
            break
        run.apply(v, w, time.perf_counter() - t0, run.brain.last_inference_s)
    run.wall = time.perf_counter() - wall0
    return run.result()


def batchable(config: DriveConfig) -> bool:
    """Whether a drive may share its brain's calls with other cars: when its latency is emulated
    (lockstep, or realtime with drawn or fixed latency) the wall time of a call enters nothing it
    measures; with wall-clock latency it must drive alone."""
    return config.latency_source != "wall"


def drive_many(brains: list[Brain], configs: list[DriveConfig],
               on_done: Callable[[int, DriveResult], None] | None = None) -> list[DriveResult]:
    """K drives in one process, each brain step of every car still driving made in one call of
    `type(brains[0]).step_many` (a model brain: one batched model call for all the cars). Every car
    gives the result `drive(brain, config)` gives alone, up to the float rounding a runtime's batched
    kernels may change; the wall-time figures are each car's share of the shared calls.
    `on_done(i, result)` is called as soon as car i's drive ends (to write its record while the
    others drive on). Only for drives whose latency is emulated (`batchable`)."""
    if len(brains) != len(configs):
        raise ValueError("one brain per drive")
    if not brains:
        return []
    wall_drives = [c for c in configs if not batchable(c)]
    if wall_drives:
        raise BadInputError("drives with wall-clock latency cannot share a process's brain calls; drive them "
                            "one at a time (closed_loop.latency: distribution makes them batchable)")
    step_many = type(brains[0]).step_many
    runs = [DriveRun(b, c, warmup=i == 0) for i, (b, c) in enumerate(zip(brains, configs))]
    results: list[DriveResult | None] = [None] * len(runs)

    def finish(ended: list[int]) -> None:
        for i in ended:
            results[i] = runs[i].result()
            if on_done is not None:
                on_done(i, results[i])

    active = list(range(len(runs)))
    while active:
        t0 = time.perf_counter()
        obs = [runs[i].observation() for i in active]
        t_step = time.perf_counter()
        try:
            commands, inference_s = step_many([runs[i].brain for i in active], obs)
        except Exception as exc:  # noqa: BLE001 - the shared model crashed: every car driving with it ends
            for i in active:
                runs[i].fail(exc)
            finish(active)
            break
        share = (time.perf_counter() - t_step) / len(active)
        for i, (v, w) in zip(active, commands):
            runs[i].apply(v, w, share, inference_s)
        each = (time.perf_counter() - t0) / len(active)
        for i in active:
            runs[i].wall += each
        finish([i for i in active if runs[i].done])
        active = [i for i in active if not runs[i].done]
    return results  # type: ignore[return-value]
