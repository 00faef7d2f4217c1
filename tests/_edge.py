"""A fresh venv holding only the edge package (its wheel built from edge/) and the runtimes asked
for, at the versions of pilotopt's own venv (pip takes them from its cache): what a car has."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXTRA_MODULES = {"onnxruntime": "onnxruntime", "litert": "ai_edge_litert"}
PIP_NAMES = {"onnxruntime": "onnxruntime", "litert": "ai-edge-litert"}


def run(*args, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=kw.pop("timeout", 600), **kw)


def in_venv(*args, **kw) -> subprocess.CompletedProcess:
    """A command of the fresh venv, without this process's PYTHONPATH (which could show it pilotopt's
    own packages, or an egg-info the wheel build left in edge/src, as already installed)."""
    return run(*args, env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, **kw)


def build_edge_venv(root: Path, extras=("onnxruntime",)) -> dict:
    from importlib import metadata

    r = run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", ROOT / "edge",
            "-w", root / "dist")
    assert r.returncode == 0, r.stderr[-2000:]
    (wheel,) = (root / "dist").glob("pilotopt_edge-*.whl")
    venv = root / "venv"
    r = run(sys.executable, "-m", "venv", venv)
    assert r.returncode == 0, r.stderr
    py = venv / "bin" / "python"
    pins = [f"{PIP_NAMES[e]}=={metadata.version(PIP_NAMES[e])}" for e in extras]
    r = in_venv(py, "-m", "pip", "install", "-q", f"{wheel}[{','.join(extras)}]",
                f"numpy=={metadata.version('numpy')}", *pins)
    assert r.returncode == 0, r.stderr[-2000:]
    return {"python": py, "bin": venv / "bin", "root": root}
