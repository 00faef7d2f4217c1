import numpy as np
import pytest

from pilotopt.sim.circuits import load_circuit
from pilotopt.sim.metrics import brain_metrics, path_metrics, path_records


def _path_metrics(track, xy, dt=0.05, laps=()):
    t = np.arange(len(xy)) * dt
    rec = path_records(track, xy, t)
    return path_metrics(track, rec["t"], rec["lateral"], rec["progress"], rec["odometer"], list(laps))


def test_constant_half_metre_offset_gives_half_metre_deviation():
    track = load_circuit("simple")
    idx = np.arange(0, len(track.points), 10)
    xy = track.points[idx] + 0.5 * track.normals[idx]
    m = _path_metrics(track, xy)
    assert m.position_deviation_mae == pytest.approx(0.5, abs=1e-3)
    assert m.position_deviation_max == pytest.approx(0.5, abs=1e-3)


def test_path_that_stops_half_way_completes_about_half():
    track = load_circuit("simple")
    half = len(track.points) // 2
    xy = track.points[: half + 1 : 5]
    m = _path_metrics(track, xy)
    assert m.percentage_completed == pytest.approx(50.0, abs=0.5)
    assert m.completed_distance == pytest.approx(track.length / 2, rel=0.01)
    assert not m.lap_completed


def test_full_lap_progress_wraps_and_average_speed():
    track = load_circuit("simple")
    idx = np.arange(0, len(track.points) + 20, 20) % len(track.points)
    xy = track.points[idx]
    dt = 0.1
    m = _path_metrics(track, xy, dt=dt, laps=[12.3])
    assert m.percentage_completed > 100.0
    assert m.lap_completed and m.lap_seconds == 12.3
    step = 20 * track.spacing
    assert m.average_speed == pytest.approx(step / dt, rel=0.01)


def test_alternating_sides_gives_mean_of_absolute_offsets():
    track = load_circuit("simple")
    idx = np.arange(100, 1100, 10)
    sign = np.where(np.arange(len(idx)) % 2 == 0, 1.0, -1.0)
    xy = track.points[idx] + (sign * 0.3)[:, None] * track.normals[idx]
    m = _path_metrics(track, xy)
    assert m.position_deviation_mae == pytest.approx(0.3, abs=1e-3)


def test_brain_metrics_timing_and_smoothness():
    period = 0.05
    # 30 steps: the first and last 10 are excluded from the means
    step = np.r_[np.full(10, 1.0), np.full(10, 0.02), np.full(10, 1.0)]
    inference = np.r_[np.full(10, 0.5), np.full(10, 0.01), np.full(10, 0.5)]
    cmds = [(6.5, -7.1), (24.0, 7.1)] * 15  # normalized: (0,0) <-> (1,1): distance sqrt(2)
    m = brain_metrics(step, inference, cmds, period)
    assert m.mean_inference_time == pytest.approx(10.0)
    assert m.brain_iterations_frequency == pytest.approx(50.0)
    assert m.deadline_misses == pytest.approx(20 / 30)
    assert m.suddenness == pytest.approx(np.sqrt(2))
    assert brain_metrics(step, [None] * 30, [(10, 0)] * 30, period).mean_inference_time is None
    assert brain_metrics(step, [None] * 30, [(10, 0)] * 30, period).suddenness == 0.0
