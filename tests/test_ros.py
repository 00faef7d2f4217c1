"""The ROS node (`pilotopt-edge ros`) drives pilotopt's simulator over real ROS 1 topics
(`pilotopt sim ros-bridge`), with a real `roscore` on a free port, started and stopped here.

The deployed model is a line follower written by hand with onnx.helper (training one would take
minutes): redness R - (G + B) / 2 of the raw 66 x 200 NHWC pixels above a threshold, its column
centroid in the upper (far) rows -> w = -KP x offset, and a constant v; in pilotopt's contract
(float32 raw 0..255 pixels in, normalized (v, w) out, v = 17.5 p0 + 6.5, w = 14.2 p1 - 7.1). It
goes through `pilotopt deploy --target ros` like any variant, so the node loads, verifies and feeds
it exactly as it would on the car."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import xmlrpc.client
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CAMERA_TOPIC = "/F1ROS/cameraL/image_raw"
CMD_TOPIC = "/F1ROS/cmd_vel"
DURATION = 15.0  # s of sim time driven over ROS, in real time (a worker waits it out: keep it short)
SPEED = 8.0  # m/s the hand-built model commands
KP = 2.0  # rad/s per unit of the line's normalized column offset (robust to ~300 ms of latency)
FAR_ROWS = 20  # rows of the 66-row view the line is looked for in (the far part)
ROS_NAMES = ("roscore", "rosmaster", "rosout")

needs_roscore = pytest.mark.skipif(shutil.which("roscore") is None,
                                   reason="roscore is not installed (`make ros` installs ros-core and python3-rospy)")


# ----------------------------------------------------------------------------- the model
def line_follower_onnx(path: Path, v: float = SPEED, kp: float = KP, threshold: float = 60.0,
                       far_rows: int = FAR_ROWS) -> Path:
    """An ONNX model in pilotopt's contract that follows the red line from the pixels."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    h, w = 66, 200
    cols = (np.arange(w) + 0.5 - w / 2) / (w / 2)  # -1 (left) .. 1 (right)
    rows = (np.arange(h) < far_rows).astype(np.float64)
    # one MatMul gives both moments of the mask: sum(m x col) and sum(m), over the far rows
    moments = np.stack([np.outer(rows, cols).ravel(), np.outer(rows, np.ones(w)).ravel()], axis=1)
    consts = {
        "redness": [[1.0], [-0.5], [-0.5]], "threshold": [threshold], "eps": [1.0], "moments_k": moments,
        # line right of centre (offset > 0) -> turn right (w < 0), as the classic brain steers
        "gain": [[0.0, -kp / 14.2]], "bias": [[(v - 6.5) / 17.5, 7.1 / 14.2]],
    }
    inits = [numpy_helper.from_array(np.asarray(a, np.float32), n) for n, a in consts.items()]
    inits += [numpy_helper.from_array(np.asarray(a, np.int64), n)
              for n, a in {"flat_shape": [1, h * w], "i0": [0], "i1": [1], "i2": [2], "axis1": [1]}.items()]
    nodes = [
        helper.make_node("MatMul", ["x", "redness"], ["red"]),  # (1, 66, 200, 1)
        helper.make_node("Sub", ["red", "threshold"], ["red_t"]),
        helper.make_node("Relu", ["red_t"], ["mask"]),
        helper.make_node("Reshape", ["mask", "flat_shape"], ["flat"]),
        helper.make_node("MatMul", ["flat", "moments_k"], ["m"]),  # (1, 2)
        helper.make_node("Slice", ["m", "i0", "i1", "axis1"], ["num"]),
        helper.make_node("Slice", ["m", "i1", "i2", "axis1"], ["mass"]),
        helper.make_node("Add", ["mass", "eps"], ["den"]),  # no line: offset 0, straight on
        helper.make_node("Div", ["num", "den"], ["offset"]),
        helper.make_node("Mul", ["offset", "gain"], ["steer"]),
        helper.make_node("Add", ["steer", "bias"], ["y"]),  # (1, 2): normalized v, w
    ]
    graph = helper.make_graph(nodes, "line_follower",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, h, w, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def deployed(tmp_path_factory) -> Path:
    """The line follower, deployed for ROS as a user would (`pilotopt deploy --target ros`)."""
    from pilotopt.deploy import deploy_variant

    tmp = tmp_path_factory.mktemp("ros_deploy")
    model = line_follower_onnx(tmp / "line_follower.onnx")
    out = tmp / "deploy"
    deploy_variant(model, "ros", out)
    assert json.loads((out / "deploy.json").read_text())["runtime"] == "onnxruntime"
    return out


def test_line_follower_steers_toward_the_line(deployed):
    """The model sees the line and turns toward it, with the sign the simulator's w has."""
    from pilotopt_edge import Brain

    from pilotopt.deploy.source import camera_frames

    brain = Brain.load(deployed)
    frame = camera_frames(1)[0]  # the start of `simple`: the line dead ahead
    v, w = brain.step(frame)
    assert v == pytest.approx(SPEED, abs=1e-4) and abs(w) < 0.3
    shifted = np.roll(frame, 120, axis=1)  # line to the right of the image -> turn right (w < 0)
    assert brain.step(shifted)[1] < -0.5
    assert brain.step(np.roll(frame, -120, axis=1))[1] > 0.5


# ----------------------------------------------------------------------------- messages
class _Msg:
    def __init__(self, frame: np.ndarray, encoding: str, pad: int = 0):
        self.height, self.width = frame.shape[:2]
        self.encoding = encoding
        self.step = self.width * 3 + pad
        rows = np.zeros((self.height, self.step), np.uint8)
        rows[:, :self.width * 3] = frame.reshape(self.height, -1)
        self.data = rows.tobytes()


def test_image_to_rgb_reads_rgb8_and_bgr8_without_opencv():
    from pilotopt_edge.errors import EdgeError
    from pilotopt_edge.ros_node import image_to_rgb

    rgb = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    assert np.array_equal(image_to_rgb(_Msg(rgb, "rgb8")), rgb)
    assert np.array_equal(image_to_rgb(_Msg(rgb[..., ::-1].copy(), "bgr8")), rgb)
    assert np.array_equal(image_to_rgb(_Msg(rgb, "rgb8", pad=16)), rgb)  # padded rows (step > width x 3)
    with pytest.raises(EdgeError, match="encoding 'mono8'.*rgb8"):
        image_to_rgb(_Msg(rgb, "mono8"))


def test_latest_frame_only_counts_what_it_drops():
    from pilotopt_edge.ros_node import Counters, LatestFrame

    class Header:
        def __init__(self, seq):
            self.seq = seq

    class M:
        def __init__(self, seq):
            self.header = Header(seq)

    c = Counters()
    latest = LatestFrame(c)
    latest.put(M(1))
    latest.put(M(2))  # replaces frame 1 before the brain took it
    latest.put(M(5))  # replaces frame 2; frames 3 and 4 never reached the callback
    assert latest.take(0.0).header.seq == 5
    assert latest.take(0.0) is None
    assert (c.received, c.dropped) == (3, 4)


def test_without_rospy_node_and_bridge_name_the_packages(monkeypatch, tmp_path):
    """rospy missing (and no Debian dist-packages to fall back on): one line naming what to install;
    the bridge finds ROS through the edge package's own import (one place)."""
    from pilotopt_edge import ros_node
    from pilotopt_edge.errors import EdgeError

    from pilotopt.sim import ros_bridge

    monkeypatch.setitem(sys.modules, "rospy", None)  # `import rospy` raises ImportError
    monkeypatch.setattr(ros_node, "SYSTEM_DIST_PACKAGES", str(tmp_path / "none"))
    with pytest.raises(EdgeError, match=r"not importable.*python3-rospy python3-sensor-msgs python3-geometry-msgs"):
        ros_node.import_ros()
    assert ros_bridge.import_ros is ros_node.import_ros


# ----------------------------------------------------------------------------- processes
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ours(marker: str) -> list[int]:
    """Processes started under this test's ROS_HOME (its roscore, rosmaster, rosout, node and bridge,
    whatever process group they put themselves in): found by their environment."""
    pids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid():
            continue
        try:
            env = (d / "environ").read_bytes()
        except OSError:
            continue
        if f"ROS_HOME={marker}".encode() in env.split(b"\0"):
            pids.append(int(d.name))
    return pids


def _ros_processes(port: int, marker: str) -> list[str]:
    """roscore / rosmaster / rosout processes of this test that are still alive."""
    alive = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            env = (d / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(n in cmd for n in ROS_NAMES) and (f"-p {port}" in cmd or marker in cmd
                                                 or f"ROS_HOME={marker}".encode() in env):
            alive.append(f"{d.name}: {cmd.strip()}")
    return alive


def _stop(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """SIGINT the process's group (ROS shuts down cleanly on it), then SIGKILL what is left."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGINT)
        except ProcessLookupError:
            pass
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # children that outlived their parent in the group
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        pass


def _wait_for_master(uri: str, roscore: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if roscore.poll() is not None:
            raise AssertionError(f"roscore exited with {roscore.returncode}")
        try:
            code, _, _ = xmlrpc.client.ServerProxy(uri).getPid("/pilotopt_test")
            if code == 1:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"no ROS master at {uri} after {timeout:.0f} s")


def _edge_cmd() -> list[str]:
    script = BIN / "pilotopt-edge"
    return [str(script)] if script.exists() else [sys.executable, "-m", "pilotopt_edge.cli"]


@pytest.fixture
def ros_env(tmp_path):
    """A private ROS master on a free port: its environment, torn down with everything started under
    it (and checked to be gone) however the test ends."""
    port = _free_port()
    home = tmp_path / "ros_home"
    (home / "log").mkdir(parents=True)
    env = dict(os.environ, ROS_MASTER_URI=f"http://127.0.0.1:{port}", ROS_HOSTNAME="127.0.0.1",
               ROS_HOME=str(home), ROS_LOG_DIR=str(home / "log"), PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT / "edge" / "src"), env.get("PYTHONPATH")) if p)
    procs: list[subprocess.Popen] = []

    def start(cmd, name):
        log = open(tmp_path / f"{name}.log", "w")
        p = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, start_new_session=True)
        p.log_path = tmp_path / f"{name}.log"
        procs.append(p)
        return p

    roscore = start(["roscore", "-p", str(port)], "roscore")
    try:
        _wait_for_master(env["ROS_MASTER_URI"], roscore)
        yield {"env": env, "port": port, "start": start, "tmp": tmp_path}
    finally:
        for p in reversed(procs):  # node and bridge first, roscore (which stops rosmaster, rosout) last
            _stop(p)
        # roslaunch puts rosmaster and rosout in their own process groups: anything still alive
        # under this test's ROS_HOME is killed by pid
        for pid in _ours(str(home)):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 10
        while _ros_processes(port, str(home)) and time.monotonic() < deadline:
            time.sleep(0.2)
        left = _ros_processes(port, str(home))
        assert not left, f"ROS processes left behind: {left}"


@pytest.mark.slow
@needs_roscore
def test_edge_node_drives_the_simulator_over_ros(deployed, ros_env):
    """15 s of sim time of `simple` in real time: camera frames over ROS to the node, Twist commands
    back, the car on the road all along, the node's own summary agreeing with the bridge."""
    env, start, tmp = ros_env["env"], ros_env["start"], ros_env["tmp"]
    node = start(_edge_cmd() + ["ros", str(deployed), "--camera", CAMERA_TOPIC, "--cmd-vel", CMD_TOPIC,
                                "--report-every", "5"], "node")
    out = tmp / "metrics.json"
    t0 = time.monotonic()
    bridge = subprocess.run([str(BIN / "pilotopt"), "sim", "ros-bridge", "--circuit", "simple",
                             "--duration", str(DURATION), "--camera-topic", CAMERA_TOPIC, "--cmd-topic", CMD_TOPIC,
                             "--rate", "20", "--wait", "90", "--out", str(out)],
                            env=env, cwd=tmp, capture_output=True, text=True, timeout=240)
    bridge_s = time.monotonic() - t0
    assert node.poll() is None, f"the node died: {node.log_path.read_text()[-2000:]}"
    _stop(node)
    node_log = node.log_path.read_text()
    assert bridge.returncode == 0, (f"bridge failed: {bridge.stderr[-2000:]}\n{bridge.stdout[-2000:]}\n"
                                    f"node: {node_log[-2000:]}")
    m = json.loads(out.read_text())["metrics"]
    summary = f"{json.dumps(m, indent=1)}\nnode: {node_log[-1500:]}"
    print(f"ros drive ({bridge_s:.1f} s wall):", {k: m[k] for k in (
        "termination", "sim_seconds", "completed_distance", "average_speed", "position_deviation_mae",
        "position_deviation_max", "off_track", "interventions", "frames_published", "commands_received",
        "command_rate", "real_time_factor")})

    # the whole duration on the road, at the model's speed, steered by the model
    assert m["termination"] == "duration", summary
    assert m["sim_seconds"] >= DURATION - 1e-6, summary
    assert not m["off_track"] and m["interventions"] == 0, summary
    assert m["position_deviation_max"] < 1.0, summary  # never near the intervention distance
    assert m["completed_distance"] > 0.9 * SPEED * DURATION, summary
    assert m["average_speed"] == pytest.approx(SPEED, rel=0.02), summary
    # the commands came over ROS, about one per camera frame, in real time
    frames = m["frames_published"]
    assert frames >= 0.95 * DURATION * 20, summary
    assert m["commands_received"] >= 0.7 * frames, summary
    assert m["command_rate"] >= 10.0, summary
    assert 0.7 <= m["real_time_factor"] <= 1.05, summary
    assert bridge_s < DURATION + 60, summary
    # the node's own report: rates while driving, and a one-line summary at shutdown that counts
    # at least the commands the bridge received
    assert "frames/s received" in node_log and "commands/s" in node_log, node_log[-2000:]
    line = [ln for ln in node_log.splitlines() if ln.startswith("pilotopt-edge ros:")]
    assert len(line) == 1, node_log[-2000:]
    processed = int(line[0].split(" processed")[0].rsplit(" ", 1)[1])
    assert processed >= m["commands_received"], line[0]


@needs_roscore
def test_node_and_bridge_without_a_master_fail_in_one_line(deployed, tmp_path):
    """No roscore answering: both say so in one line and exit 2 instead of waiting forever."""
    env = dict(os.environ, ROS_MASTER_URI=f"http://127.0.0.1:{_free_port()}", ROS_HOME=str(tmp_path))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT / "edge" / "src"), env.get("PYTHONPATH")) if p)
    for cmd in (_edge_cmd() + ["ros", str(deployed)],
                [str(BIN / "pilotopt"), "sim", "ros-bridge", "--duration", "1", "--wait", "1"]):
        r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        assert r.returncode == 2, (cmd, r.stdout[-1000:], r.stderr[-1000:])
        err = r.stderr.strip().splitlines()
        assert len(err) == 1 and "no ROS master answers" in err[0] and "roscore" in err[0], r.stderr
