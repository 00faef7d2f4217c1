"""`pilotopt-edge check`: the user's proof on the car that the model is fed right.

Runs the brain on camera frames whose commands pilotopt computed (the deploy folder's
`reference.npz`, or the user's own file with the same arrays) and compares command by command."""

from __future__ import annotations

import os
from typing import Optional

import numpy as np

from pilotopt_edge.brain import REFERENCE, Brain
from pilotopt_edge.errors import EdgeError


def read_reference(path: str):
    """(frames (N, 480, 640, 3) uint8, commands (N, 2) v, w) from an .npz with those two arrays."""
    if not os.path.isfile(path):
        raise EdgeError(f"no reference frames at {path}; pass an .npz with 'frames' and 'commands' "
                        "or redeploy the folder with pilotopt deploy")
    try:
        with np.load(path) as doc:
            frames, commands = np.asarray(doc["frames"]), np.asarray(doc["commands"], dtype=np.float64)
    except (OSError, ValueError, KeyError) as exc:
        raise EdgeError(f"{path} is not a reference file ({type(exc).__name__}: {exc}); it needs arrays "
                        "'frames' (N, 480, 640, 3) uint8 and 'commands' (N, 2)") from None
    if frames.ndim != 4 or commands.shape != (len(frames), 2):
        raise EdgeError(f"{path}: 'frames' {frames.shape} and 'commands' {commands.shape} do not pair up; "
                        "expected (N, 480, 640, 3) and (N, 2)")
    return frames, commands


def check(deploy_dir: str, frames_path: Optional[str] = None, threads: int = 1, brain: Optional[Brain] = None) -> dict:
    """Max |dv|, |dw| between this device's commands and pilotopt's, and whether they are within
    the folder's tolerance (1e-4 for float models, the output's quantization step for int8 ones)."""
    brain = brain or Brain.load(deploy_dir, threads=threads)
    frames, expected = read_reference(frames_path or os.path.join(str(deploy_dir), REFERENCE))
    brain.reset()
    got = np.array([brain.step(f) for f in frames], dtype=np.float64)
    diff = np.abs(got - expected)
    tolerance = float(brain.manifest.get("tolerance", 1e-4))
    return {"frames": int(len(frames)), "max_abs_dv": float(diff[:, 0].max()), "max_abs_dw": float(diff[:, 1].max()),
            "tolerance": tolerance, "ok": bool(diff.max() <= tolerance), "runtime": brain.model.runtime,
            "commands": got.tolist()}
