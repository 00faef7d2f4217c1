"""The edge package installs on its own: a fresh venv with the wheel, NumPy and ONNX Runtime and
nothing of the ML stack, where `Brain.step` gives pilotopt's own (v, w) for the same frames."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _fixtures import torch_checkpoint

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = ("torch", "tensorflow", "tf-keras", "opencv-python", "opencv-python-headless", "scipy", "pilotopt",
             "ai-edge-litert", "openvino", "numba")


def _run(*args, **kw):
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=kw.pop("timeout", 600), **kw)


@pytest.fixture(scope="module")
def edge_venv(tmp_path_factory):
    """The wheel built from edge/, installed with its [onnxruntime] extra into a new venv (the runtime
    and NumPy at the versions of pilotopt's own venv, so pip takes them from its cache)."""
    import numpy
    import onnxruntime

    root = tmp_path_factory.mktemp("edge_venv")
    r = _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", ROOT / "edge",
             "-w", root / "dist")
    assert r.returncode == 0, r.stderr[-2000:]
    (wheel,) = (root / "dist").glob("pilotopt_edge-*.whl")
    venv = root / "venv"
    r = _run(sys.executable, "-m", "venv", venv)
    assert r.returncode == 0, r.stderr
    py = venv / "bin" / "python"
    r = _run(py, "-m", "pip", "install", "-q", f"{wheel}[onnxruntime]", f"numpy=={numpy.__version__}",
             f"onnxruntime=={onnxruntime.__version__}")
    assert r.returncode == 0, r.stderr[-2000:]
    return {"python": py, "bin": venv / "bin", "root": root}


@pytest.fixture(scope="module")
def deployed(tmp_path_factory, tiny_data):
    from pilotopt.deploy import deploy_variant
    from pilotopt.deploy.source import camera_frames
    from pilotopt.techniques import optimize

    root = tmp_path_factory.mktemp("edge_deploy")
    model = torch_checkpoint(root / "student.pt", "pilotnet_student", seed=5)
    variants = optimize(model, ["onnx_fp32", "openvino_fp32"], [tiny_data],
                        root / "variants", cache_dir=root / "cache", test_circuits=("simple",))
    assert all(v.status == "ok" for v in variants), [(v.name, v.reason) for v in variants]
    frames = camera_frames(12, every=25)
    np.savez(root / "frames.npz", frames=frames)
    out = {name: deploy_variant(root / "variants" / name, "edge", root / f"edge-{name}", frames=root / "frames.npz")
           for name in ("onnx_fp32", "openvino_fp32")}
    return {"root": root, "frames": frames, "folders": {k: Path(v["folder"]) for k, v in out.items()},
            "variants": root / "variants"}


def test_the_wheel_brings_numpy_and_one_runtime_only(edge_venv):
    r = _run(edge_venv["python"], "-m", "pip", "list", "--format=json")
    names = {p["name"].lower() for p in json.loads(r.stdout)}
    assert {"pilotopt-edge", "numpy", "onnxruntime"} <= names
    assert not names & set(FORBIDDEN), names & set(FORBIDDEN)


def test_brain_step_on_the_edge_equals_pilotopt(edge_venv, deployed):
    from pilotopt.artifacts import load_artifact_predictor, open_artifact
    from pilotopt.preprocess import crop_resize

    folder = deployed["folders"]["onnx_fp32"]
    code = ("import json, sys, numpy as np; from pilotopt_edge import Brain; b = Brain.load(sys.argv[1]); "
            "f = np.load(sys.argv[2])['frames']; print(json.dumps([b.step(x) for x in f]))")
    r = _run(edge_venv["python"], "-c", code, folder, deployed["root"] / "frames.npz")
    assert r.returncode == 0, r.stderr[-2000:]
    got = np.asarray(json.loads(r.stdout))
    art = open_artifact(deployed["variants"] / "onnx_fp32")
    p = load_artifact_predictor(art)
    views = np.stack([crop_resize(f, art.contract.geometry) for f in deployed["frames"]])
    v, w = art.contract.commands(p.raw.predict(art.contract.encode(views)))
    assert np.abs(got - np.stack([v, w], 1)).max() <= 1e-5
    r = _run(edge_venv["bin"] / "pilotopt-edge", "check", folder)
    assert r.returncode == 0 and r.stdout.startswith("OK: 12 frames"), r.stdout + r.stderr


def test_a_runtime_extra_not_installed_names_the_fix(edge_venv, deployed):
    r = _run(edge_venv["bin"] / "pilotopt-edge", "check", deployed["folders"]["openvino_fp32"])
    assert r.returncode == 2
    assert r.stderr.strip() == "error: runtime 'openvino' is not installed here: pip install 'pilotopt-edge[openvino]'"


def test_the_edge_code_parses_as_python_3_8():
    import ast

    for path in (ROOT / "edge" / "src" / "pilotopt_edge").glob("*.py"):
        ast.parse(path.read_text(), filename=str(path), feature_version=(3, 8))
