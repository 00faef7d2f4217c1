"""Simulator speed: how many camera frames per second, and how much faster than real time the
expert drives with the camera rendered (one core: NumPy's elementwise work is single-threaded)."""

from __future__ import annotations

import os
import platform
import statistics
import time

import numpy as np

from pilotopt import __version__
from pilotopt.sim.brains import make_brain
from pilotopt.sim.camera import CameraModel, PilotNetView
from pilotopt.sim.circuits import load_circuit
from pilotopt.sim.closed_loop import DriveConfig, drive
from pilotopt.sim.render import Renderer

BENCH_SCHEMA = "pilotopt.bench.sim/1"


def _fps(render, poses, repeats: int) -> dict:
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for k, pose in enumerate(poses):
            render(pose, k)
        rates.append(len(poses) / (time.perf_counter() - t0))
    return {"fps_median": statistics.median(rates), "fps_runs": rates}


def bench_sim(circuit: str = "simple", frames: int = 300, repeats: int = 3) -> dict:
    track = load_circuit(circuit)
    camera = CameraModel()
    t0 = time.perf_counter()
    renderer = Renderer(track, camera)
    setup_s = time.perf_counter() - t0
    idx = np.linspace(0, len(track.points) - 1, frames).astype(int)
    poses = [(track.points[i, 0], track.points[i, 1], track.heading_at(i)) for i in idx]
    view = PilotNetView(camera)
    full = _fps(lambda p, k: renderer.render_frame(p, k), poses, repeats)
    brain_view = _fps(lambda p, k: renderer.render_view(view, p, k), poses, repeats)

    drives = {}
    for label, camera_view in (("expert_with_pilotnet_view", "pilotnet"), ("expert_no_camera", None)):
        rtfs, results = [], None
        for _ in range(repeats):
            results = drive(make_brain("expert"), DriveConfig(circuit=circuit, camera_view=camera_view))
            rtfs.append(results.metrics.real_time_factor)
        drives[label] = {"real_time_factor_median": statistics.median(rtfs), "real_time_factor_runs": rtfs,
                         "lap_completed": results.metrics.lap_completed,
                         "sim_seconds": results.metrics.sim_seconds}
    summary = {
        "full_frame_640x480_fps": round(full["fps_median"], 1),
        "pilotnet_view_fps": round(brain_view["fps_median"], 1),
        "expert_real_time_factor_with_camera": round(drives["expert_with_pilotnet_view"]["real_time_factor_median"], 1),
        "expert_real_time_factor_no_camera": round(drives["expert_no_camera"]["real_time_factor_median"], 1),
        "target_real_time_factor": 100.0,
    }
    return {
        "schema": BENCH_SCHEMA,
        "pilotopt": __version__,
        "machine": {"python": platform.python_version(), "cpu_count": os.cpu_count(),
                    "processor": platform.processor() or platform.machine()},
        "circuit": {"name": circuit, "length_m": track.length},
        "renderer_setup_seconds": setup_s,
        "full_frame": full,
        "pilotnet_view": brain_view,
        "drives": drives,
        "summary": summary,
    }
