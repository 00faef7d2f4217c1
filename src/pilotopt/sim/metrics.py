"""Closed-loop metrics with Behavior Metrics' names and correct definitions (its own code averages
1000^d for 'position deviation', accepts 5 m as a completed lap and keeps whole-second clocks)."""

from __future__ import annotations

import numpy as np

from pilotopt.preprocess import normalize_labels
from pilotopt.records import BrainTiming, PathMetrics
from pilotopt.sim.track import Track

TRIM_CALLS = 10  # first and last calls excluded from timing means


def trimmed(x: np.ndarray, k: int = TRIM_CALLS) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x[k:-k] if len(x) > 2 * k else x


def path_metrics(track: Track, t, lateral, progress, odometer, lap_times: list[float]) -> PathMetrics:
    """Driving-quality metrics from per-tick records (sim time, signed lateral offset, unwrapped
    progress along the line, odometer)."""
    t = np.asarray(t, dtype=np.float64)
    lat = np.abs(np.asarray(lateral, dtype=np.float64))
    progress = np.asarray(progress, dtype=np.float64)
    sim_seconds = float(t[-1] - t[0]) if len(t) > 1 else 0.0
    completed = max(0.0, float(progress[-1])) if len(progress) else 0.0
    odo = float(odometer[-1] - odometer[0]) if len(odometer) else 0.0
    return PathMetrics(
        completed_distance=completed,
        percentage_completed=100.0 * completed / track.length,
        lap_completed=len(lap_times) > 0,
        laps_completed=len(lap_times),
        lap_seconds=float(lap_times[0]) if lap_times else None,
        sim_seconds=sim_seconds,
        average_speed=odo / sim_seconds if sim_seconds > 0 else 0.0,
        position_deviation_mae=float(lat.mean()) if len(lat) else 0.0,
        position_deviation_max=float(lat.max()) if len(lat) else 0.0,
    )


def brain_metrics(step_seconds, inference_seconds, commands, period: float) -> BrainTiming:
    """Timing and smoothness metrics from per-brain-step records."""
    step = np.asarray(step_seconds, dtype=np.float64)
    inf = np.asarray([x for x in inference_seconds if x is not None], dtype=np.float64)
    cmds = np.asarray(commands, dtype=np.float64).reshape(-1, 2)
    mean_step = float(trimmed(step).mean()) if len(step) else float("nan")
    norm = normalize_labels(cmds[:, 0], cmds[:, 1]) if len(cmds) else np.zeros((0, 2))
    sudden = float(np.linalg.norm(np.diff(norm, axis=0), axis=1).mean()) if len(norm) > 1 else 0.0
    return BrainTiming(
        brain_steps=int(len(step)),
        mean_inference_time=float(trimmed(inf).mean() * 1000.0) if len(inf) else None,
        mean_brain_step_time=mean_step * 1000.0,
        brain_iterations_frequency=1.0 / mean_step if mean_step > 0 else None,
        deadline_misses=float((step > period).mean()) if len(step) else 0.0,
        suddenness=sudden,
    )


def path_records(track: Track, xy: np.ndarray, t: np.ndarray) -> dict[str, np.ndarray]:
    """Records for an externally given path (x, y per tick), projected as the simulator does."""
    xy = np.asarray(xy, dtype=np.float64)
    hint = track.project(xy[0]).index
    last_s = track.project(xy[0], hint).s
    progress, lateral, total = [], [], 0.0
    for p in xy:
        proj = track.project(p, hint)
        ds = proj.s - last_s
        if ds > track.length / 2:
            ds -= track.length
        elif ds < -track.length / 2:
            ds += track.length
        total += ds
        last_s, hint = proj.s, proj.index
        progress.append(total)
        lateral.append(proj.lateral)
    odometer = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(xy, axis=0).T))])
    return {"t": np.asarray(t, dtype=np.float64), "lateral": np.array(lateral), "progress": np.array(progress),
            "odometer": odometer}
