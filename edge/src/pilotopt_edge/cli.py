"""`pilotopt-edge`: check, bench, device and ros, on the device (argparse: nothing to install)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

from pilotopt_edge import __version__
from pilotopt_edge.bench import bench, device
from pilotopt_edge.check import check
from pilotopt_edge.errors import EdgeError
from pilotopt_edge.runtimes import available
from pilotopt_edge.ros_node import run_node


def _write_json(path: str, doc: dict) -> None:
    """Write through a temporary name in the same folder, so no half-written file is ever read."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=folder)
    with os.fdopen(fd, "w") as f:
        json.dump(doc, f, indent=1)
    os.replace(tmp, path)


def _check(args) -> int:
    r = check(args.deploy_dir, args.frames, threads=args.threads)
    verdict = "OK" if r["ok"] else "MISMATCH"
    print(f"{verdict}: {r['frames']} frames on {r['runtime']}, max |dv| {r['max_abs_dv']:.3g} m/s, "
          f"max |dw| {r['max_abs_dw']:.3g} rad/s (tolerance {r['tolerance']:.3g})")
    if not r["ok"]:
        print("the model is not fed as pilotopt fed it: check the camera (RGB, 640 x 480) and the runtime version",
              file=sys.stderr)
    return 0 if r["ok"] else 1


def _bench(args) -> int:
    r = bench(args.deploy_dir, iterations=args.iterations, warmup=args.warmup, threads=args.threads,
              frames_path=args.frames, with_check=args.check)
    if args.out:
        _write_json(args.out, r)
    if args.json:  # one line, last: what pilotopt reads back over SSH (a cut connection leaves no valid line)
        print(json.dumps(r, separators=(",", ":")))
        return 0
    s, m = r["brain_step"], r["model_call"]
    print(f"{r['variant']} on {r['runtime']} {r['runtime_version']} ({r['device']['cpu']}, {args.threads} thread(s)): "
          f"brain step p50 {s['p50_ms']:.3f} / p90 {s['p90_ms']:.3f} / p99 {s['p99_ms']:.3f} ms, "
          f"model call p50 {m['p50_ms']:.3f} ms, cold start {r['cold_start_ms']:.0f} ms, "
          f"peak RSS {r['peak_rss_mb']:.0f} MB" + (f" -> {args.out}" if args.out else ""))
    return 0


def _device(args) -> int:
    """This device and the runtimes the edge package finds here, as one JSON line (`pilotopt target
    check` reads it over SSH or Ray)."""
    print(json.dumps({"device": device(), "runtimes": available(), "edge_version": __version__},
                     separators=(",", ":")))
    return 0


def _ros(args) -> int:
    return run_node(args.deploy_dir, camera_topic=args.camera, cmd_topic=args.cmd_vel, threads=args.threads,
                    rate_every=args.report_every)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pilotopt-edge", description="Run a pilotopt deploy folder on the car.")
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("check", help="compare this device's commands with pilotopt's on reference frames")
    c.add_argument("deploy_dir")
    c.add_argument("frames", nargs="?", help=".npz with 'frames' and 'commands' (default: the folder's reference.npz)")
    c.add_argument("--threads", type=int, default=1)
    c.set_defaults(run=_check)
    b = sub.add_parser("bench", help="time the brain step and the model call on this device")
    b.add_argument("deploy_dir")
    b.add_argument("--out", help="write every sample as JSON (pilotopt sim drive --latency-samples reads it)")
    b.add_argument("--iterations", type=int, default=200)
    b.add_argument("--warmup", type=int, default=10)
    b.add_argument("--threads", type=int, default=1)
    b.add_argument("--frames", help=".npz of frames to feed (default: the folder's reference.npz)")
    b.add_argument("--check", action="store_true", help="also compare the commands with the reference's (as check)")
    b.add_argument("--json", action="store_true", help="print the whole result as one JSON line on stdout")
    b.set_defaults(run=_bench)
    d = sub.add_parser("device", help="print this device and the runtimes found here, as JSON")
    d.set_defaults(run=_device)
    r = sub.add_parser("ros", help="a ROS 1 node: camera topic in, geometry_msgs/Twist out")
    r.add_argument("deploy_dir")
    r.add_argument("--camera", default="/F1ROS/cameraL/image_raw")
    r.add_argument("--cmd-vel", default="/F1ROS/cmd_vel")
    r.add_argument("--threads", type=int, default=1)
    r.add_argument("--report-every", type=float, default=5.0, help="seconds between rate reports")
    r.set_defaults(run=_ros)
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except EdgeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
