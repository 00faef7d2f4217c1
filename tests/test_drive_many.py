"""K cars in one process (sim.closed_loop.drive_many) drive as each would alone: identical
trajectories and metrics for brains whose calls do not depend on the batch, within a stated
tolerance for a runtime whose batched kernels round differently, and a batch-dependent model is
stepped car by car."""

from __future__ import annotations

import numpy as np
import pytest

from pilotopt.runtimes.base import Predictor
from pilotopt.sim.brains import make_brain
from pilotopt.sim.brains.model import ModelBrain
from pilotopt.sim.closed_loop import DriveConfig, drive, drive_many

# figures of the machine's wall clock (in lockstep the brain's rate is one too); every other figure
# of a drive must be equal
WALL_FIGURES = {"wall_seconds", "real_time_factor", "mean_inference_time", "mean_brain_step_time",
                "wall_brain_iterations_frequency", "deadline_misses"}


def _configs(timeout=8.0):
    """Lockstep and realtime drives under conditions and repetitions (each its own seeded start
    and noise), with a latency drawn from samples."""
    samples = [0.012, 0.02, 0.035]
    return ([DriveConfig(circuit="simple", mode="realtime", latency_samples=samples, condition=c, repetition=r,
                         interventions=True, timeout=timeout, warmup_steps=1)
             for c, r in (("default", 0), ("dusk", 1), ("gaussian:10", 2), ("slow:5", 0))]
            + [DriveConfig(circuit="simple", mode="lockstep", repetition=1, timeout=timeout, warmup_steps=1)])


def _same_drive(a, b):
    for key in a.trajectory:
        np.testing.assert_array_equal(a.trajectory[key], b.trajectory[key], err_msg=key)
    wall = WALL_FIGURES | ({"brain_iterations_frequency"} if a.metrics.latency_source == "none" else set())
    ma, mb = a.metrics.to_json(), b.metrics.to_json()
    assert {k: v for k, v in ma.items() if k not in wall} == {k: v for k, v in mb.items() if k not in wall}


class RowWise(Predictor):
    """A model that maps each frame on its own (batch-invariant by construction): speed from the
    bottom rows' brightness, steering from the left-right balance of the line's colour."""

    runtime = "numpy"

    def __init__(self, batch_dependent: bool = False):
        self.batch_dependent = batch_dependent
        self.calls: list[int] = []

    def predict(self, x):
        x = np.asarray(x, np.float32)
        self.calls.append(len(x))
        bright = x[:, -20:].mean(axis=(1, 2, 3)) / 255.0
        if self.batch_dependent:  # like dynamic int8: the batch's own range sets the scale
            bright = bright / max(float(bright.max()), 1e-6) * 0.5
        half = x.shape[2] // 2
        balance = (x[:, -30:, :half, 0].mean(axis=(1, 2)) - x[:, -30:, half:, 0].mean(axis=(1, 2))) / 255.0
        return np.stack([0.3 + 0.4 * bright, 0.5 + 2.0 * balance], axis=1).astype(np.float32)


def test_k_expert_cars_drive_exactly_as_each_alone():
    alone = [drive(make_brain("expert"), c) for c in _configs()]
    together = drive_many([make_brain("expert") for _ in _configs()], _configs())
    assert len(together) == len(alone)
    for a, b in zip(alone, together):
        _same_drive(a, b)


def test_a_batch_invariant_model_is_called_once_per_step_for_all_cars_and_drives_identically():
    model = RowWise()
    alone = [drive(ModelBrain(model), c) for c in _configs()]
    model.calls.clear()
    brains = [ModelBrain(model) for _ in _configs()]
    together = drive_many(brains, _configs())
    for a, b in zip(alone, together):
        _same_drive(a, b)
    assert len(brains) + 2 in model.calls  # the one check, with a black and an over-bright frame added
    assert model.calls.count(len(brains)) > 10  # then every car's frame in one call
    steps = sum(r.metrics.brain_steps for r in together)
    assert len(model.calls) < steps / 2  # far fewer calls than brain steps


def test_a_batch_dependent_model_is_stepped_car_by_car():
    model = RowWise(batch_dependent=True)
    alone = [drive(ModelBrain(model), c) for c in _configs()]
    together = drive_many([ModelBrain(model) for _ in _configs()], _configs())
    for a, b in zip(alone, together):
        _same_drive(a, b)


def test_a_torch_model_batched_stays_within_the_stated_tolerance(tmp_path):
    """PyTorch's batched kernels round differently (~1e-7 on the outputs): over 6 s of driving the
    cars stay within 0.05 m of their lone drives and their completion within 0.1 points."""
    from _fixtures import torch_checkpoint

    from pilotopt.runtimes import load_predictor

    pred = load_predictor(torch_checkpoint(tmp_path / "model.pt", "pilotnet"), runtime="torch", threads=1)
    cfgs = _configs(timeout=6.0)[:4]
    alone = [drive(ModelBrain(pred), c) for c in cfgs]
    together = drive_many([ModelBrain(pred) for _ in cfgs], _configs(timeout=6.0)[:4])
    for a, b in zip(alone, together):
        n = min(len(a.trajectory["x"]), len(b.trajectory["x"]))
        gap = np.hypot(a.trajectory["x"][:n] - b.trajectory["x"][:n], a.trajectory["y"][:n] - b.trajectory["y"][:n])
        assert gap.max() < 0.05
        assert abs(a.metrics.percentage_completed - b.metrics.percentage_completed) < 0.1
        assert a.metrics.termination == b.metrics.termination


def test_wall_clock_latency_is_refused_and_each_car_is_reported_as_it_ends():
    from pilotopt.errors import BadInputError

    with pytest.raises(BadInputError, match="wall-clock latency"):
        drive_many([make_brain("expert")], [DriveConfig(mode="realtime", timeout=2.0)])
    ended = []
    cfgs = [DriveConfig(circuit="simple", mode="lockstep", timeout=t, warmup_steps=0) for t in (4.0, 2.0)]
    drive_many([make_brain("expert"), make_brain("expert")], cfgs, on_done=lambda i, r: ended.append(i))
    assert ended == [1, 0]  # the shorter drive is handed over first


def _fake_run(tmp_path):
    """A run folder as `pilotopt bench closed-loop` reads it: one evaluated variant with its
    brain-step latency samples."""
    import json

    from _fixtures import torch_checkpoint

    model = torch_checkpoint(tmp_path / "model.pt", "pilotnet_student")
    row = {"name": "torch", "framework": "torch", "runtime": "torch", "artifact": str(model), "status": "ok",
           "brain_step_samples_ms": [8.0, 12.0, 20.0]}
    (tmp_path / "run" / "offline").mkdir(parents=True)
    (tmp_path / "run" / "offline" / "results.json").write_text(json.dumps({"schema": "pilotopt.results/1",
                                                                            "variants": [row]}))
    return tmp_path / "run"


def test_bench_closed_loop_writes_rates_for_every_car_count(tmp_path):
    import json
    import subprocess
    import sys

    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, "-m", "pilotopt", "bench", "closed-loop", "--run", str(_fake_run(tmp_path)),
                           "--cars", "1,3", "--single-drives", "2", "--process-drives", "1", "--timeout", "2",
                           "--out", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = json.loads(out.read_text())
    [v] = doc["variants"]
    assert v["variant"] == "torch" and v["one_car"]["drives"] == 2 and v["one_car"]["drives_per_core_s"] > 0
    assert [p["cars"] for p in v["per_cars"]] == [1, 3] and [p["drives"] for p in v["per_cars"]] == [1, 3]
    # a fresh process per drive: the same drive's steps, its start-up counted in the children's CPU time
    proc_path = v["one_car_process"]
    assert proc_path["drives"] == 1 and proc_path["brain_steps"] == v["per_cars"][0]["brain_steps"]
    assert proc_path["core_s_per_drive"] > v["one_car"]["core_s_per_drive"]
    assert all(p["speedup_vs_process_per_drive"] > 0 for p in v["per_cars"])
    for p in v["per_cars"]:
        assert p["core_s"] > 0 and p["speedup_drives_per_core_s"] > 0
        assert p["vs_one_car"]["max_position_diff_m"] < 0.05  # the same drives as one at a time
    assert v["per_cars"][0]["vs_one_car"]["max_position_diff_m"] == 0.0  # one car: the same calls


def test_bench_closed_loop_bad_input_is_one_line(tmp_path):
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "pilotopt", "bench", "closed-loop", "--run", str(tmp_path / "none")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "pilotopt run" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    proc = subprocess.run([sys.executable, "-m", "pilotopt", "bench", "closed-loop", "--run", str(_fake_run(tmp_path)),
                           "--variants", "nope"], capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and "nope" in proc.stderr and "Traceback" not in proc.stderr
