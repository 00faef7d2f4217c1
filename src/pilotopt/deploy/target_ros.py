"""--target ros: the edge folder plus how to start the ROS 1 node on the Behavior Metrics topics."""

from __future__ import annotations

import os
from pathlib import Path

from pilotopt.atomic import atomic_path
from pilotopt.deploy import register_target
from pilotopt.deploy.edge_folder import write_edge_folder

CAMERA_TOPIC = "/F1ROS/cameraL/image_raw"
CMD_TOPIC = "/F1ROS/cmd_vel"

RUN_NODE = """#!/bin/sh
# Start the pilotopt-edge ROS node on this folder: camera in, geometry_msgs/Twist out.
# Needs ROS 1 (rospy, sensor_msgs, geometry_msgs) and pip install 'pilotopt-edge[{extra}]'.
# Override the topics: CAMERA_TOPIC=... CMD_TOPIC=... ./run_node.sh
here="$(cd "$(dirname "$0")" && pwd)"
exec pilotopt-edge ros "$here" --camera "${{CAMERA_TOPIC:-{camera}}}" --cmd-vel "${{CMD_TOPIC:-{cmd}}}" "$@"
"""


@register_target("ros", "the edge folder and run_node.sh: a ROS 1 node from the camera topic to Twist commands")
def deploy_ros(source, out: Path) -> dict:
    with atomic_path(out) as tmp:
        tmp.mkdir(parents=True)
        manifest = write_edge_folder(source, tmp)
        script = tmp / "run_node.sh"
        script.write_text(RUN_NODE.format(extra=manifest["runtime"], camera=CAMERA_TOPIC, cmd=CMD_TOPIC))
        os.chmod(script, 0o755)
    return {"folder": str(out), "target": "ros", "variant": source.name,
            "files": sorted(manifest["sha256"]) + ["deploy.json", "run_node.sh"],
            "notes": [f"with roscore running: {out}/run_node.sh (topics {CAMERA_TOPIC} -> {CMD_TOPIC}); "
                      "try it first against the simulator: pilotopt sim ros-bridge"]}
