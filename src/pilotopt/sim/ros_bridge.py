"""pilotopt's simulator on ROS 1 topics (`pilotopt sim ros-bridge`): a ROS node drives a built-in
circuit in closed loop over real topics, as it would drive Behavior Metrics' Gazebo car.

The bridge renders the car's 640 x 480 camera frame and publishes it as sensor_msgs/Image (rgb8) on
the camera topic at the camera rate, subscribes to geometry_msgs/Twist on the command topic and
applies each command (linear.x = v, angular.z = w) to the vehicle at the sim time it arrived.
Simulated time advances in step with wall time (real time): a node that takes 80 ms to answer
steers 80 ms late, as on the car. The simulator is pilotopt's own (`Simulation`: vehicle, track,
renderer, end-of-run rules) and so are the metrics (`path_metrics`, `drive_quality`); the bridge
adds what ROS shows: frames published, commands received and their rate.

Before the clock starts the car waits on the grid: the first frame is published until the first
command arrives (`wait_s`), so the node's start-up (loading the model, connecting) is not driving
time. If the bridge falls behind wall time (a rendering hiccup) the sim clock is held back rather
than jumping, and the real-time factor says how much.
"""

from __future__ import annotations

import collections
import math
import threading
import time
from dataclasses import asdict, dataclass

from pilotopt_edge.ros_node import DEFAULT_CAMERA_TOPIC, DEFAULT_CMD_TOPIC, import_ros, require_master

from pilotopt.errors import BadInputError
from pilotopt.records import BridgeMetrics, BridgeResult
from pilotopt.sim.camera import CameraModel
from pilotopt.sim.score import INTERVENTION_DISTANCE


@dataclass
class BridgeConfig:
    circuit: str = "simple"
    direction: str = "anticlockwise"
    duration: float = 30.0  # s of sim time, driven in real time
    laps: int = 1  # the run also ends when these are done
    camera_topic: str = DEFAULT_CAMERA_TOPIC
    cmd_topic: str = DEFAULT_CMD_TOPIC
    rate: float = 20.0  # camera frames per second (sim and published)
    interventions: bool = False  # put the car back on the line (> 1 m off) instead of ending the run
    look: str = "default"
    seed: int = 0
    wait_s: float = 30.0  # s to wait for the node's first command before the clock starts
    stuck_seconds: float = 10.0

    def validate(self) -> None:
        # scipy: imported on first use, not with this module
        from pilotopt.sim.circuits import parse_direction

        if not self.duration > 0 or not math.isfinite(self.duration):
            raise BadInputError(f"duration must be > 0 s of sim time, got {self.duration}")
        if not 0 < self.rate <= 200:
            raise BadInputError(f"camera rate must be in (0, 200] frames/s, got {self.rate}")
        if self.laps < 1:
            raise BadInputError(f"laps must be at least 1, got {self.laps}")
        if self.wait_s < 0:
            raise BadInputError(f"wait must be >= 0 s, got {self.wait_s}")
        for name in ("camera_topic", "cmd_topic"):
            topic = getattr(self, name)
            if not topic or any(c.isspace() for c in topic):
                raise BadInputError(f"{name.replace('_', ' ')} '{topic}' is not a ROS topic name, e.g. /F1ROS/cmd_vel")
        self.direction = parse_direction(self.direction)


class CommandInbox:
    """Twist messages as rospy's receive thread delivers them, with their arrival (monotonic) time."""

    def __init__(self):
        self.cond = threading.Condition()
        self.queue: collections.deque = collections.deque(maxlen=256)
        self.received = 0

    def put(self, msg) -> None:
        with self.cond:
            self.received += 1
            self.queue.append((time.monotonic(), float(msg.linear.x), float(msg.angular.z)))
            self.cond.notify()

    def wait(self, timeout: float) -> list[tuple[float, float, float]]:
        """Every command that arrived, oldest first, waiting up to `timeout` s for one."""
        with self.cond:
            if not self.queue and timeout > 0:
                self.cond.wait(timeout)
            out = list(self.queue)
            self.queue.clear()
            return out


def image_message(Image, frame, stamp, frame_id: str = "camera"):
    """A 480 x 640 x 3 uint8 RGB frame as a sensor_msgs/Image (rgb8)."""
    msg = Image()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.height, msg.width = int(frame.shape[0]), int(frame.shape[1])
    msg.encoding = "rgb8"
    msg.is_bigendian = 0
    msg.step = int(frame.shape[1]) * 3
    msg.data = frame.tobytes()
    return msg


def run_bridge(cfg: BridgeConfig, log=print) -> BridgeResult:
    """Drive `cfg.duration` s of sim time with whatever node answers on the topics; the metrics."""
    import numpy as np

    # numba and scipy: imported on first use, not with this module
    from pilotopt.sim.circuits import load_circuit
    from pilotopt.sim.closed_loop import DriveConfig, drive_quality
    from pilotopt.sim.metrics import path_metrics
    from pilotopt.sim.simulation import SimSettings, Simulation, Termination

    cfg.validate()
    rospy, Image, Twist = import_ros()
    track = load_circuit(cfg.circuit, cfg.direction)
    camera = CameraModel(fps=cfg.rate)
    settings = SimSettings(laps=cfg.laps, timeout=cfg.duration, stuck_seconds=cfg.stuck_seconds,
                           intervention_distance=INTERVENTION_DISTANCE if cfg.interventions else None)
    sim = Simulation(track, camera, cfg.look, settings=settings, seed=cfg.seed)
    frame = sim.frame()  # builds the renderer before the clock starts

    require_master(rospy)
    rospy.init_node("pilotopt_sim_bridge", anonymous=True, disable_signals=True)
    inbox = CommandInbox()
    pub = rospy.Publisher(cfg.camera_topic, Image, queue_size=1, tcp_nodelay=True)
    rospy.Subscriber(cfg.cmd_topic, Twist, inbox.put, queue_size=10, tcp_nodelay=True)
    period = sim.period
    try:
        # on the grid: the first frame, again at the camera rate, until the node answers
        log(f"ros-bridge: {track.name} ({cfg.direction}) on {cfg.camera_topic} -> waiting up to {cfg.wait_s:g} s "
            f"for a command on {cfg.cmd_topic}")
        deadline = time.monotonic() + cfg.wait_s
        first = []
        while not first and time.monotonic() < deadline and not rospy.is_shutdown():
            pub.publish(image_message(Image, frame, rospy.Time.now()))
            first = inbox.wait(min(period, max(0.0, deadline - time.monotonic())))
        if not first:
            raise BadInputError(f"no command on {cfg.cmd_topic} within {cfg.wait_s:g} s of publishing "
                                f"{cfg.camera_topic}: start the node (e.g. pilotopt-edge ros DEPLOY_DIR) on the "
                                "same ROS master, or check the topic names")
        sim.command(first[-1][1], first[-1][2])
        grid_commands = inbox.received
        log(f"ros-bridge: first command after {cfg.wait_s - max(0.0, deadline - time.monotonic()):.1f} s; "
            f"driving {cfg.duration:g} s of sim time in real time")

        published, applied, held_back = 0, 0, 0.0
        wall0 = time.monotonic()
        origin = wall0  # wall time of sim time 0; moves forward only when the bridge falls behind
        while not sim.done:
            behind = time.monotonic() - (origin + sim.time)
            if behind > period:  # rendering or the host fell behind: hold the sim clock back
                origin += behind
                held_back += behind
            if sim.tick > 0:
                frame = sim.frame()
            pub.publish(image_message(Image, frame, rospy.Time.now()))
            published += 1
            t_next = (sim.tick + 1) * period
            while not sim.done:
                remaining = origin + t_next - time.monotonic()
                for arrival, v, w in inbox.wait(remaining):
                    sim.advance_to(min(t_next, max(sim.time, arrival - origin)))
                    if sim.done:
                        break
                    sim.command(v, w)
                    applied += 1
                if remaining <= 0:
                    break
            sim.advance_to(t_next)
        wall = time.monotonic() - wall0
    finally:
        rospy.signal_shutdown("pilotopt sim ros-bridge done")

    rec = sim.trajectory()
    path = path_metrics(track, rec["t"], rec["lateral"], rec["progress"], rec["odometer"], sim.lap_times)
    drive_cfg = DriveConfig(circuit=cfg.circuit, direction=cfg.direction, laps=cfg.laps,
                            interventions=cfg.interventions, look=cfg.look, seed=cfg.seed)
    quality = drive_quality(rec["lateral"], path, sim, drive_cfg)
    commands = inbox.received - grid_commands
    v = np.asarray(rec["v"], dtype=np.float64)
    metrics = BridgeMetrics(
        **path.to_json(), **quality.to_json(),
        termination="duration" if sim.termination == Termination.TIMEOUT else sim.termination,
        off_track=sim.termination == Termination.OFF_TRACK,
        frames_published=published, commands_received=commands, commands_applied=applied,
        command_rate=commands / wall if wall > 0 else 0.0,  # per wall second
        commands_per_frame=commands / published if published else 0.0, camera_rate=cfg.rate,
        real_time_factor=path.sim_seconds / wall if wall > 0 else None, wall_seconds=wall,
        held_back_seconds=held_back, max_speed=float(v.max()) if len(v) else 0.0)
    return BridgeResult(config=asdict(cfg), metrics=metrics, circuit={"name": track.name, "length": track.length})
