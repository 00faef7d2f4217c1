"""Closed-loop science: reproducible realtime drives from a measured latency distribution,
repetitions, conditions, interventions, the autonomy and driving-score formulas, and the
bootstrap interval the report puts on every closed-loop figure."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from _fixtures import torch_checkpoint

from pilotopt.errors import BadInputError
from pilotopt.decide.stats import bootstrap_ci, overlaps, spearman_ci
from pilotopt.sim.brains import make_brain
from pilotopt.sim.brains.base import Brain
from pilotopt.sim.camera import PilotNetView
from pilotopt.sim.closed_loop import DriveConfig, drive
from pilotopt.sim.conditions import condition_names, parse_condition
from pilotopt.sim.score import (INTERVENTION_DISTANCE, autonomy, bm_position_deviation, driving_score,
                                excursions)


# ----------------------------------------------------------------------------- formulas
def test_autonomy_and_score_on_hand_computed_cases():
    assert autonomy(2, 120.0) == pytest.approx(90.0)  # PilotNet: (1 - 2 * 6 / 120) * 100
    assert autonomy(0, 30.0) == 100.0 and autonomy(30, 120.0) == 0.0  # floored at 0
    # 100 * completion * autonomy / (1 + deviation / 0.5 m)
    assert driving_score(1.0, 90.0, 0.5) == pytest.approx(45.0)
    assert driving_score(0.5, 100.0, 0.0) == pytest.approx(50.0)
    assert driving_score(1.7, 100.0, 0.0) == pytest.approx(100.0)  # completion capped at the laps asked for
    assert bm_position_deviation([0.0, 1.0]) == pytest.approx((1.0 + 1000.0) / 2)  # Behavior Metrics: mean 1000^d
    assert excursions([0.2, 1.2, 1.3, 0.5, -1.1, 0.0]) == 2 and excursions([1.5, 0.0]) == 1


def test_bootstrap_interval_on_known_samples():
    assert bootstrap_ci([4.0]) == (4.0, 4.0, 4.0) and bootstrap_ci([2.0, 2.0, 2.0]) == (2.0, 2.0, 2.0)
    assert bootstrap_ci([]) is None
    m, lo, hi = bootstrap_ci([1.0, 2.0, 3.0, 4.0, 5.0])
    assert m == 3.0 and 1.0 <= lo < 3.0 < hi <= 5.0
    assert bootstrap_ci([1.0, 2.0, 3.0, 4.0, 5.0]) == (m, lo, hi)  # seeded: the same interval every time
    # a large normal sample: the percentile interval is close to mean +- 1.96 sigma / sqrt(n)
    x = np.random.default_rng(1).normal(10.0, 2.0, 400)
    m, lo, hi = bootstrap_ci(x)
    half = 1.96 * x.std(ddof=1) / np.sqrt(len(x))
    assert lo == pytest.approx(m - half, abs=0.06) and hi == pytest.approx(m + half, abs=0.06)
    assert overlaps((1, 0, 2), (2.5, 1.9, 3)) and not overlaps((1, 0, 2), (3, 2.1, 4))


def test_spearman_with_interval():
    s = spearman_ci([1, 2, 3, 4, 5, 6, 7, 8], [8, 7, 6, 5, 4, 3, 2, 1])
    assert s["rho"] == pytest.approx(-1.0) and s["high"] <= -0.9 and s["n"] == 8
    assert spearman_ci([1, 2], [2, 1]) is None and spearman_ci([1, 2, 3], [5, 5, 5]) is None


def test_rank_correlation_of_few_tied_pairs_says_nothing_on_the_log():
    """With 4 pairs and a repeated x, many bootstrap resamples hold one x value only; those count
    as rho 0 and leave no scipy warning on the run's log."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = spearman_ci([1, 1, 1, 2], [1, 2, 3, 4])
    assert s is not None and s["low"] <= s["rho"] <= s["high"] and s["n"] == 4


# ----------------------------------------------------------------------------- conditions
class RecordingBrain(Brain):
    """Drives straight; keeps every observation it was given."""

    name = "recording"

    def __init__(self, v=8.0, w=0.0):
        super().__init__()
        self.view = PilotNetView()
        self.cmd = (v, w)
        self.seen = []

    def reset(self, sim):
        self.seen = []

    def step(self, obs):
        self.seen.append(obs.copy())
        return self.cmd


def _first_frames(condition, **kw):
    brain = RecordingBrain()
    drive(brain, DriveConfig(circuit="simple", timeout=0.5, warmup_steps=0, condition=condition, **kw))
    return np.stack(brain.seen).astype(np.float64)


def test_conditions_change_the_frames_as_they_say():
    clean = _first_frames("default")
    dusk = _first_frames("dusk")
    assert dusk.mean() < clean.mean() - 10  # darker world
    noisy = _first_frames("gaussian:12")
    diff = noisy - clean
    assert diff.std() == pytest.approx(12.0, rel=0.25) and abs(diff.mean()) < 1.5
    sp = _first_frames("salt_pepper:0.1")
    changed = np.any(sp != clean, axis=-1)
    assert 0.07 < changed.mean() < 0.13  # about a tenth of the pixels
    assert set(np.unique(sp[changed])) <= {0.0, 255.0}
    assert np.array_equal(_first_frames("gaussian:12"), noisy)  # seeded noise: the same drive twice


def test_condition_registry_and_errors():
    names = condition_names()
    for name in ("default", "dusk", "shadows", "white_line", "noisy", "textured", "gaussian", "salt_pepper", "lag",
                 "slow"):
        assert name in names
    c = parse_condition("dusk+gaussian:8+slow:10")
    assert (c.look, c.camera_noise, c.noise_level, c.latency_scale, c.spec) == (
        "dusk", "gaussian", 8.0, 10.0, "dusk+gaussian:8+slow:10")
    assert parse_condition("slow").latency_scale == 5.0  # the default level
    with pytest.raises(BadInputError, match="unknown condition 'fog'"):
        parse_condition("fog")
    with pytest.raises(BadInputError, match="takes no level"):
        parse_condition("dusk:2")
    with pytest.raises(BadInputError, match="not a number"):
        parse_condition("slow:fast")


def test_actuator_lag_and_slow_hardware_change_the_commands_effect():
    """lag: the executed turn rate trails the command; slow: the drawn latency is scaled by N."""
    turn = dict(circuit="simple", timeout=1.0, warmup_steps=0)
    sharp = drive(RecordingBrain(w=1.0), DriveConfig(**turn)).trajectory
    lagged = drive(RecordingBrain(w=1.0), DriveConfig(condition="lag:0.5", **turn)).trajectory
    assert sharp["w"][3] == pytest.approx(1.0) and 0.05 < lagged["w"][3] < 0.6
    rt = dict(circuit="simple", timeout=2.0, warmup_steps=0, mode="realtime", latency_samples=[0.01])
    fast = drive(RecordingBrain(), DriveConfig(**rt))
    slow = drive(RecordingBrain(), DriveConfig(condition="slow:8", **rt))
    assert fast.metrics.mean_emulated_latency_ms == pytest.approx(10.0)
    assert slow.metrics.mean_emulated_latency_ms == pytest.approx(80.0)
    assert slow.metrics.brain_steps < fast.metrics.brain_steps / 1.5  # a slow brain sees fewer frames


# ----------------------------------------------------------------------------- drives
def test_repetitions_start_apart_and_are_reproducible():
    runs = [drive(make_brain("classic"), DriveConfig(circuit="simple", timeout=3.0, repetition=r)) for r in (0, 1, 2)]
    starts = [(r.trajectory["x"][0], r.trajectory["y"][0]) for r in runs]
    assert len({(round(x, 3), round(y, 3)) for x, y in starts}) == 3
    assert abs(runs[0].trajectory["lateral"][0]) < 1e-6  # repetition 0: the canonical start on the line
    again = drive(make_brain("classic"), DriveConfig(circuit="simple", timeout=3.0, repetition=2))
    assert np.array_equal(again.trajectory["x"], runs[2].trajectory["x"])
    assert runs[1].metrics.repetition == 1


def test_interventions_put_the_car_back_and_cost_autonomy():
    cfg = dict(circuit="simple", timeout=20.0, warmup_steps=0)
    ends = drive(RecordingBrain(v=8.0, w=0.0), DriveConfig(**cfg))  # straight on: leaves the road
    assert ends.metrics.termination == "off_track"
    helped = drive(RecordingBrain(v=8.0, w=0.0), DriveConfig(interventions=True, **cfg))
    m = helped.metrics.to_json()
    assert m["termination"] != "off_track" and m["interventions"] >= 2
    assert np.abs(helped.trajectory["lateral"]).max() < INTERVENTION_DISTANCE + 0.5  # never far off the line
    assert m["autonomy"] == pytest.approx(autonomy(m["interventions"], m["sim_seconds"]))
    assert m["percentage_completed"] > ends.metrics.percentage_completed


def test_a_much_slower_hardware_drives_worse():
    """The same brain at latency scale 1 and 40 (emulated from one measured latency)."""
    base = dict(circuit="simple", mode="realtime", latency_samples=[0.008, 0.012], interventions=True)
    ok = drive(make_brain("classic"), DriveConfig(**base))
    slow = drive(make_brain("classic"), DriveConfig(latency_scale=40.0, **base))
    assert ok.metrics.interventions == 0 and ok.metrics.lap_completed
    assert (slow.metrics.driving_score < ok.metrics.driving_score - 5
            and slow.metrics.interventions > ok.metrics.interventions)


REPRO = """
import json, sys
import numpy as np
from pilotopt.artifacts import open_artifact
from pilotopt.runtimes import load_artifact_predictor
from pilotopt.sim.brains.model import ModelBrain
from pilotopt.sim.closed_loop import DriveConfig, drive
model, samples, out = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
brain = ModelBrain(load_artifact_predictor(open_artifact(model), runtime="torch", threads=1))
r = drive(brain, DriveConfig(circuit="simple", mode="realtime", timeout=4.0, latency_samples=samples, seed=3,
                             repetition=1, condition="gaussian:6", interventions=True))
np.savez(out, **{k: r.trajectory[k] for k in ("x", "y", "theta", "v", "w")})
print(json.dumps({"source": r.metrics.latency_source, "steps": r.metrics.brain_steps}))
"""


def test_reproducible_realtime_gives_identical_trajectories_in_two_processes(tmp_path):
    model = torch_checkpoint(tmp_path / "model.pt", "pilotnet_student")
    samples = json.dumps([0.004, 0.03, 0.07, 0.012, 0.051])  # s; spans several camera periods
    outs = []
    for k in range(2):
        out = tmp_path / f"traj{k}.npz"
        proc = subprocess.run([sys.executable, "-c", REPRO, str(model), samples, str(out)], capture_output=True,
                              text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        info = json.loads(proc.stdout.strip().splitlines()[-1])
        assert info["source"] == "distribution" and info["steps"] > 10
        outs.append(np.load(out))
    for key in ("x", "y", "theta", "v", "w"):
        assert np.array_equal(outs[0][key], outs[1][key]), key
    # and the wall-clock mode is labelled as such
    r = drive(make_brain("classic"), DriveConfig(circuit="simple", mode="realtime", timeout=1.0))
    assert r.metrics.latency_source == "wall" and r.to_json()["config"]["latency_source"] == "wall"


def test_a_repetitions_sensor_noise_is_normal_within_a_frame_and_seeded():
    from pilotopt.sim.conditions.camera_noise import GaussianBank

    image = np.full((66, 200, 3), 128, dtype=np.uint8)
    bank = GaussianBank(np.random.default_rng([0, 1, 4]))
    frames = [bank.add(image, 2.0).astype(np.float32) - 128 for _ in range(40)]
    for f in frames[:5]:  # each frame: mean 0 and the asked standard deviation (after rounding to uint8)
        assert abs(f.mean()) < 0.05 and 1.85 < f.std() < 2.15
    # frames differ from each other (new windows), and the same seed gives the same frames
    assert min(np.abs(a - b).mean() for a, b in zip(frames, frames[1:])) > 1.0
    again = GaussianBank(np.random.default_rng([0, 1, 4]))
    assert all(np.array_equal(again.add(image, 2.0).astype(np.float32) - 128, f) for f in frames)
    other = GaussianBank(np.random.default_rng([0, 2, 4])).add(image, 2.0).astype(np.float32) - 128
    assert not np.array_equal(other, frames[0])
