"""`pilotopt-edge ros DEPLOY_DIR`: a ROS 1 node (rospy, as Behavior Metrics' Noetic stack) that drives.

It subscribes to the camera (sensor_msgs/Image, rgb8 or bgr8, 640 x 480; default
`/F1ROS/cameraL/image_raw`) and publishes geometry_msgs/Twist (linear.x = v m/s, angular.z = w rad/s;
default `/F1ROS/cmd_vel`), as Behavior Metrics' Formula-1 brains do.

Latest frame only: the subscriber keeps a queue of one (with a receive buffer larger than a frame,
without which rospy queues frames anyway), the callback only parks the message, and the main loop
runs the brain on the newest parked frame. A frame that arrives while the brain is busy replaces
the parked one, so a slow device steers on fresh frames at a lower rate instead of falling behind.
Frames the node never ran are counted as dropped: those replaced while parked and the gaps in the
camera's header.seq (frames rospy itself discarded). Every `rate_every` seconds it logs the rates
(frames received, processed, dropped, commands per second, brain step time) and at shutdown
(Ctrl-C, SIGTERM, `rosnode kill`) prints a one-line summary.

rospy, sensor_msgs and geometry_msgs come from ROS (ROS Noetic, or Debian's python3-rospy
packages); nothing here is imported before `run_node` is called, so the rest of the package works
without ROS."""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Optional

import numpy as np

from pilotopt_edge.brain import Brain
from pilotopt_edge.errors import EdgeError

DEFAULT_CAMERA_TOPIC = "/F1ROS/cameraL/image_raw"
DEFAULT_CMD_TOPIC = "/F1ROS/cmd_vel"
ENCODINGS = ("rgb8", "bgr8")
SUBSCRIBER_BUFF_SIZE = 1 << 24  # bytes; rospy needs more than one frame's worth to drop old frames
# where Debian's python3-rospy puts rospy (its system Python); a virtual environment cannot see it
SYSTEM_DIST_PACKAGES = "/usr/lib/python3/dist-packages"
ROS_FIX = ("install ROS Noetic's rospy (source /opt/ros/noetic/setup.bash), or on Debian: "
           "apt-get install python3-rospy python3-sensor-msgs python3-geometry-msgs")


def _ros_modules():
    import rospy
    from geometry_msgs.msg import Twist
    from sensor_msgs.msg import Image

    return rospy, Image, Twist


def import_ros():
    """(rospy, Image, Twist), or a one-line EdgeError naming the packages that provide them."""
    try:
        return _ros_modules()
    except ImportError:
        # Run from a virtual environment, the system's ROS packages (Debian: python3-rospy in
        # /usr/lib/python3/dist-packages) are invisible; append that folder, at the END of sys.path
        # so the environment's own packages (numpy, the runtime) still win, and try again.
        if os.path.isdir(SYSTEM_DIST_PACKAGES) and SYSTEM_DIST_PACKAGES not in sys.path:
            sys.path.append(SYSTEM_DIST_PACKAGES)
    try:
        return _ros_modules()
    except ImportError as exc:
        raise EdgeError(f"ROS 1 is not importable here ({exc}); {ROS_FIX}") from None


def image_to_rgb(msg) -> np.ndarray:
    """A sensor_msgs/Image (rgb8 or bgr8) -> an (H, W, 3) uint8 RGB array, without cv_bridge or
    OpenCV; the row stride (`step`) may include padding."""
    encoding = str(msg.encoding).lower()
    if encoding not in ENCODINGS:
        raise EdgeError(f"camera image encoding '{msg.encoding}': the node reads {' or '.join(ENCODINGS)}; "
                        "set the camera driver's output encoding to rgb8")
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    data = msg.data
    if isinstance(data, (list, tuple)):  # some publishers hand uint8[] over as a list of ints
        data = bytes(bytearray(data))
    buf = np.frombuffer(data, dtype=np.uint8)
    if step < w * 3 or buf.size < h * step:
        raise EdgeError(f"camera image of {buf.size} bytes does not hold {h} rows of step {step} "
                        f"for {w} x {h} x 3; the camera driver sent a malformed image")
    rgb = buf[:h * step].reshape(h, step)[:, :w * 3].reshape(h, w, 3)
    if encoding == "bgr8":
        rgb = rgb[..., ::-1]
    return np.ascontiguousarray(rgb)


class Counters:
    """Frames and commands since the start (totals) and since the last report (window)."""

    def __init__(self):
        self.received = self.processed = self.dropped = self.commands = 0
        self.step_s = 0.0
        self.model_s = 0.0
        self.start = time.monotonic()

    def snapshot(self) -> dict:
        return {"received": self.received, "processed": self.processed, "dropped": self.dropped,
                "commands": self.commands, "step_s": self.step_s, "model_s": self.model_s,
                "t": time.monotonic()}


def _rates(now: dict, then: dict) -> dict:
    dt = max(1e-9, now["t"] - then["t"])
    n = now["processed"] - then["processed"]
    return {"received_hz": (now["received"] - then["received"]) / dt,
            "processed_hz": n / dt,
            "dropped": now["dropped"] - then["dropped"],
            "commands_hz": (now["commands"] - then["commands"]) / dt,
            "step_ms": 1000.0 * (now["step_s"] - then["step_s"]) / n if n else float("nan"),
            "model_ms": 1000.0 * (now["model_s"] - then["model_s"]) / n if n else float("nan")}


class LatestFrame:
    """The newest camera message, handed from rospy's receive thread to the main loop; a message
    that replaces one the loop has not taken yet is a dropped frame."""

    def __init__(self, counters: Counters):
        self.counters = counters
        self.cond = threading.Condition()
        self.msg = None
        self.last_seq: Optional[int] = None

    def put(self, msg) -> None:
        with self.cond:
            c = self.counters
            c.received += 1
            seq = getattr(getattr(msg, "header", None), "seq", None)
            if isinstance(seq, int) and self.last_seq is not None and seq > self.last_seq + 1:
                c.dropped += seq - self.last_seq - 1  # published, but discarded before our callback
            if isinstance(seq, int):
                self.last_seq = seq
            if self.msg is not None:
                c.dropped += 1  # the brain was busy: the parked frame is replaced by a newer one
            self.msg = msg
            self.cond.notify()

    def take(self, timeout: float):
        with self.cond:
            if self.msg is None:
                self.cond.wait(timeout)
            msg, self.msg = self.msg, None
            return msg


def summary_line(c: Counters, camera_topic: str, cmd_topic: str) -> str:
    now = c.snapshot()
    r = _rates(now, {"received": 0, "processed": 0, "dropped": 0, "commands": 0, "step_s": 0.0,
                     "model_s": 0.0, "t": c.start})
    return (f"pilotopt-edge ros: {now['received']} frames received on {camera_topic}, {now['processed']} processed, "
            f"{now['dropped']} dropped, {now['commands']} commands on {cmd_topic} in {now['t'] - c.start:.1f} s "
            f"({r['commands_hz']:.1f} commands/s, brain step {r['step_ms']:.2f} ms, model {r['model_ms']:.2f} ms)")


def run_node(deploy_dir: str, camera_topic: str = DEFAULT_CAMERA_TOPIC, cmd_topic: str = DEFAULT_CMD_TOPIC,
             threads: int = 1, rate_every: float = 5.0, node_name: str = "pilotopt_edge") -> int:
    """Drive from the camera topic until ROS shuts the node down; returns the exit code (0)."""
    brain = Brain.load(deploy_dir, threads=threads)  # a bad deploy folder fails before ROS starts
    rospy, Image, Twist = import_ros()
    require_master(rospy)
    rospy.init_node(node_name, anonymous=True)
    counters = Counters()
    latest = LatestFrame(counters)
    pub = rospy.Publisher(cmd_topic, Twist, queue_size=1, tcp_nodelay=True)
    rospy.Subscriber(camera_topic, Image, latest.put, queue_size=1, buff_size=SUBSCRIBER_BUFF_SIZE,
                     tcp_nodelay=True)
    info = brain.describe()
    rospy.loginfo(f"pilotopt-edge: {info['variant']} on {info['runtime']} {info['runtime_version']}, "
                  f"{camera_topic} -> {cmd_topic}, latest frame only")
    rate_every = float(rate_every)
    last = counters.snapshot()
    failure: Optional[str] = None
    try:
        while not rospy.is_shutdown():
            msg = latest.take(timeout=0.1)
            if msg is not None:
                t0 = time.perf_counter()
                v, w = brain.step(image_to_rgb(msg))
                cmd = Twist()
                cmd.linear.x, cmd.angular.z = v, w
                pub.publish(cmd)
                counters.step_s += time.perf_counter() - t0
                counters.model_s += brain.last_model_s
                counters.processed += 1
                counters.commands += 1
            if rate_every > 0 and time.monotonic() - last["t"] >= rate_every:
                now = counters.snapshot()
                r = _rates(now, last)
                rospy.loginfo(f"pilotopt-edge: {r['received_hz']:.1f} frames/s received, {r['processed_hz']:.1f} "
                              f"processed, {r['dropped']} dropped, {r['commands_hz']:.1f} commands/s, "
                              f"brain step {r['step_ms']:.2f} ms (model {r['model_ms']:.2f} ms)")
                last = now
    except EdgeError as exc:  # a camera the model cannot be fed from: stop, say why
        failure = str(exc)
    except rospy.ROSInterruptException:
        pass
    finally:
        line = summary_line(counters, camera_topic, cmd_topic)
        print(line, flush=True)
        if not rospy.is_shutdown():
            rospy.signal_shutdown(failure or "done")
    if failure:
        raise EdgeError(failure)
    return 0


def require_master(rospy) -> None:
    """Fail in one line when no ROS master answers (rospy.init_node would wait for it forever)."""
    import rosgraph

    if not rosgraph.is_master_online():
        uri = os.environ.get("ROS_MASTER_URI", "http://localhost:11311")
        raise EdgeError(f"no ROS master answers at {uri}; start roscore (or set ROS_MASTER_URI to the "
                        "master Behavior Metrics runs)")

