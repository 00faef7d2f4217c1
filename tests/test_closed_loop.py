import numpy as np
import pytest

from pilotopt.errors import BadInputError
from pilotopt.sim.brains import make_brain
from pilotopt.sim.brains.base import Brain
from pilotopt.sim.camera import PilotNetView
from pilotopt.sim.circuits import circuit_names
from pilotopt.sim.closed_loop import DriveConfig, drive

@pytest.mark.slow
@pytest.mark.parametrize("direction", ["anticlockwise", "clockwise"])
@pytest.mark.parametrize("circuit", circuit_names())
def test_expert_completes_every_circuit(circuit, direction):
    r = drive(make_brain("expert"), DriveConfig(circuit=circuit, direction=direction))
    m = r.metrics.to_json()
    assert m["termination"] == "laps_completed", m
    assert m["lap_completed"] and m["percentage_completed"] >= 100.0
    assert m["position_deviation_mae"] < 0.3
    assert 6.5 <= m["average_speed"] <= 24.0


def test_classic_brain_completes_simple():
    r = drive(make_brain("classic"), DriveConfig(circuit="simple"))
    assert r.metrics.termination == "laps_completed", r.metrics
    assert r.metrics.position_deviation_mae < 1.0


def test_lockstep_is_deterministic():
    a = drive(make_brain("classic"), DriveConfig(circuit="simple", timeout=15.0))
    b = drive(make_brain("classic"), DriveConfig(circuit="simple", timeout=15.0))
    for key in ("x", "y", "theta", "lateral"):
        assert np.array_equal(a.trajectory[key], b.trajectory[key])
    assert len(a.trajectory["x"]) == 15.0 / 0.05 + 1


class ConstantBrain(Brain):
    """Drives straight at a fixed speed; optionally slow to compute."""

    name = "constant"

    def __init__(self, v=10.0, w=0.0):
        super().__init__()
        self.view = PilotNetView()
        self.cmd = (v, w)
        self.calls = 0

    def step(self, obs):
        assert obs.shape == (66, 200, 3)
        self.calls += 1
        return self.cmd


def test_realtime_latency_delays_commands_and_skips_frames():
    brain = ConstantBrain()
    r = drive(brain, DriveConfig(circuit="simple", mode="realtime", latency=0.12, timeout=3.0,
                                 warmup_steps=0))
    t = r.steps["t"]
    # a brain taking 0.12 s sees every third frame (0, 0.15, 0.30, ...)
    assert np.allclose(np.diff(t), 0.15)
    # the car stands still until the first command acts at t = 0.12 (start speed 0)
    x, y = r.trajectory["x"], r.trajectory["y"]
    moved = np.hypot(x - x[0], y - y[0])
    assert moved[2] == 0.0  # t = 0.10
    assert moved[3] == pytest.approx(10.0 * (0.15 - 0.12), rel=1e-6)  # t = 0.15


def test_slow_brain_drives_worse_in_realtime():
    fast = drive(make_brain("classic"), DriveConfig(circuit="simple", mode="realtime", latency=0.0, timeout=30))
    slow = drive(make_brain("classic"), DriveConfig(circuit="simple", mode="realtime", latency=0.25, timeout=30))
    assert fast.metrics.brain_steps > 2.5 * slow.metrics.brain_steps
    assert (slow.metrics.position_deviation_mae > fast.metrics.position_deviation_mae
            or slow.metrics.termination == "off_track")


def test_end_reasons():
    off = drive(ConstantBrain(v=10.0, w=1.0), DriveConfig(circuit="simple"))
    assert off.metrics.termination == "off_track" and off.metrics.off_track
    stuck = drive(ConstantBrain(v=0.0), DriveConfig(circuit="simple", stuck_seconds=2.0))
    assert stuck.metrics.termination == "stuck"
    assert stuck.metrics.sim_seconds == pytest.approx(2.05, abs=0.06)
    timeout = drive(make_brain("expert"), DriveConfig(circuit="simple", timeout=5.0))
    assert timeout.metrics.termination == "timeout"
    assert timeout.metrics.sim_seconds == pytest.approx(5.0)


def test_brain_exception_is_recorded_not_raised():
    class Broken(ConstantBrain):
        def step(self, obs):
            raise RuntimeError("converter crashed")
    r = drive(Broken(), DriveConfig(circuit="simple", warmup_steps=0))
    assert r.metrics.termination == "brain_error"
    assert "converter crashed" in r.metrics.error


def test_two_laps_and_json():
    r = drive(make_brain("expert"), DriveConfig(circuit="simple", laps=2))
    assert r.metrics.laps_completed == 2 and r.metrics.percentage_completed >= 200
    doc = r.to_json()
    assert doc["schema"] == "pilotopt.drive/2" and doc["metrics"]["lap_seconds"] > 0


def test_bad_config():
    with pytest.raises(BadInputError, match="mode"):
        drive(make_brain("expert"), DriveConfig(mode="warp"))
    with pytest.raises(BadInputError, match="unknown brain"):
        make_brain("pilot")
    assert "simple" in circuit_names()
