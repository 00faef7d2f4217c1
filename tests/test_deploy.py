"""`pilotopt deploy`: Behavior Metrics' unmodified brains, fed 20 simulator camera frames their own
way (reproduced here from the facts of BM's code, independently of pilotopt.deploy.bm_brains),
give pilotopt's (v, w) within 1e-4; the edge folder reproduces pilotopt exactly; the edge package
installs on its own (a fresh venv with the wheel, NumPy and ONNX Runtime, nothing of the ML stack)
and computes pilotopt's commands there; bad input is one line. One set of variants serves all."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from _edge import build_edge_venv, in_venv
from _fixtures import torch_checkpoint

pytestmark = pytest.mark.slow

TECHNIQUES = ["onnx_fp32", "openvino_int8", "torch_static", "torch_to_keras>tflite_fp32", "torch_to_keras>tflite_int8"]
SETTINGS = {"openvino_int8": {"calibration_frames": 32},
            "torch_static": {"calibration_frames": 32}, "tflite_int8": {"calibration_frames": 32}}
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_data):
    """A tiny torch student and its variants, as `pilotopt optimize` writes them."""
    from pilotopt.deploy.source import camera_frames
    from pilotopt.techniques import optimize

    root = tmp_path_factory.mktemp("deploy")
    model = torch_checkpoint(root / "student.pt", "pilotnet_student", seed=3)
    variants = optimize(model, TECHNIQUES, [tiny_data], root / "variants", cache_dir=root / "cache",
                        test_circuits=("simple",), settings=SETTINGS)
    bad = [(v.name, v.reason) for v in variants if v.status != "ok"]
    assert not bad, bad
    frames = camera_frames(20)
    np.savez(root / "frames.npz", frames=frames)
    return {"root": root, "model": model, "variants": root / "variants", "frames": frames}


def _pilotopt_commands(path, frames, runtime=None):
    """What `pilotopt evaluate` / the simulator compute for these frames: pilotopt's crop and resize,
    the variant's contract and runtime, the output map."""
    from pilotopt.artifacts import open_artifact
    from pilotopt.runtimes import load_artifact_predictor
    from pilotopt.preprocess import crop_resize

    art = open_artifact(path)
    p = load_artifact_predictor(art, runtime)
    views = np.stack([crop_resize(f, art.contract.geometry) for f in frames])
    v, w = art.contract.commands(p.raw.predict(art.contract.encode(views)))
    return np.stack([v, w], axis=1)


# -- Behavior Metrics' brains, as its code does it -----------------------------------------------------
def _bm_crop_resize(frame):
    import cv2

    return cv2.resize(frame[240:480], (200, 66))  # ImageSize [W, H]


def _bm_tf_brain(model_path, frames, v_map, w_map):
    """brain_f1_keras*.py with UseOptimized, ImageCropped, ImageNormalized, PredictionsNormalized."""
    import tensorflow as tf
    from albumentations import Normalize

    net = tf.lite.Interpreter(model_path=str(model_path))
    net.allocate_tensors()
    i, o = net.get_input_details()[0]["index"], net.get_output_details()[0]["index"]
    out = []
    for f in frames:
        img = Normalize()(image=_bm_crop_resize(f))["image"]  # albumentations' ImageNet defaults
        net.set_tensor(i, np.expand_dims(img.astype(np.float32), 0))
        net.invoke()
        p = net.get_tensor(o)[0]
        out.append((v_map(p[0]), w_map(p[1])))
    return np.asarray(out)


def _bm_torch_brain(model_path, frames):
    """brain_f1_torch.py with UseOptimized: torch.jit.load (no .eval()), ToTensor, fixed output map."""
    import torch

    net = torch.jit.load(str(model_path))
    out = []
    for f in frames:
        x = torch.from_numpy(np.transpose(_bm_crop_resize(f), (2, 0, 1)).copy()).float().div(255).unsqueeze(0)
        p = net(x).detach().numpy()[0]
        out.append((p[0] * 17.5 + 6.5, p[1] * 14.2 - 7.1))
    return np.asarray(out)


def _deploy(run, variant, target):
    from pilotopt.deploy import deploy_variant

    out = run["root"] / "deployed" / f"{variant}-{target}"
    return deploy_variant(run["variants"] / variant, target, out, frames=run["root"] / "frames.npz"), out


@pytest.mark.parametrize("variant", ["torch_to_keras+tflite_fp32", "torch_to_keras+tflite_int8"])
def test_behavior_metrics_tf_brains_drive_the_tflite_export(run, variant):
    done, out = _deploy(run, variant, "behavior-metrics")
    want = _pilotopt_commands(run["variants"] / variant, run["frames"])
    cfg = yaml.safe_load((out / f"configs/gazebo/pilotopt-{variant}.yml").read_text())["Behaviors"]["Robot"]
    assert cfg["BrainPath"] == "brains/gazebo/f1/brain_f1_keras_opencv_dataset.py"
    params = cfg["Parameters"]
    assert params["UseOptimized"] and params["ImageNormalized"] and params["PredictionsNormalized"]
    assert params["ImageSize"] == [200, 66] and "tflite" in params["Model"]
    got = _bm_tf_brain(out / "models/gazebo/tf_models" / params["Model"], run["frames"],
                       lambda p: 17.5 * p + 6.5, lambda p: 14.2 * p - 7.1)
    assert np.abs(got - want).max() <= 1e-4
    # brain_f1_keras.py reads the same input but maps v = 13 p0, w = 6 (p1 - 0.5): its own model file
    keras_cfg = yaml.safe_load((out / f"configs/gazebo/pilotopt-{variant}-keras.yml").read_text())["Behaviors"]["Robot"]
    assert keras_cfg["BrainPath"] == "brains/gazebo/f1/brain_f1_keras.py"
    got = _bm_tf_brain(out / "models/gazebo/tf_models" / keras_cfg["Parameters"]["Model"], run["frames"],
                       lambda p: 13 * p, lambda p: 6 * (p - 0.5))
    assert np.abs(got - want).max() <= 1e-4
    assert np.ptp(want[:, 1]) > 0  # the frames exercise the model (not a constant answer)


def test_behavior_metrics_torch_brain_drives_the_torchscript_export(run, tmp_path):
    # the float checkpoint, as pilotopt's torch runtime runs it
    from pilotopt.deploy import deploy_variant

    out = tmp_path / "bm-float"
    deploy_variant(run["model"], "behavior-metrics", out, frames=run["root"] / "frames.npz")
    cfg = yaml.safe_load(next((out / "configs/gazebo").glob("*.yml")).read_text())["Behaviors"]["Robot"]
    assert cfg["BrainPath"] == "brains/gazebo/f1/brain_f1_torch.py" and cfg["Parameters"]["UseOptimized"]
    got = _bm_torch_brain(out / "models/gazebo/torch_models" / cfg["Parameters"]["Model"], run["frames"])
    assert np.abs(got - _pilotopt_commands(run["model"], run["frames"])).max() <= 1e-4


def test_behavior_metrics_torch_brain_drives_the_int8_executorch_variant(run):
    done, out = _deploy(run, "torch_static", "behavior-metrics")
    cfg = yaml.safe_load((out / "configs/gazebo/pilotopt-torch_static.yml").read_text())["Behaviors"]["Robot"]
    model = out / "models/gazebo/torch_models" / cfg["Parameters"]["Model"]
    got = _bm_torch_brain(model, run["frames"])
    # the same int8 model (int8 weights and scales) as its q/dq program, run by pilotopt
    want = _pilotopt_commands(run["variants"] / "torch_static" / "qdq.pt2", run["frames"], runtime="torch_export")
    assert np.abs(got - want).max() <= 1e-4
    # and close to the XNNPACK .pte itself (int8 kernels round apart), said in the notes
    pte = _pilotopt_commands(run["variants"] / "torch_static", run["frames"])
    assert np.abs(got - pte).max() < 0.5
    assert any("q/dq" in n for n in done["notes"])
    # BM's environment has torch only: the TorchScript loads and runs without torchao or pilotopt
    code = ("import sys, torch; m = torch.jit.load(sys.argv[1]); m(torch.rand(1, 3, 66, 200)); "
            "assert 'torchao' not in sys.modules and 'pilotopt' not in sys.modules; print('ok')")
    r = subprocess.run([sys.executable, "-c", code, str(model)], capture_output=True, text=True, timeout=120)
    assert r.stdout.strip() == "ok", r.stderr[-800:]


@pytest.mark.parametrize("variant", ["onnx_fp32", "openvino_int8", "torch_to_keras+tflite_int8"])
def test_edge_folder_reproduces_pilotopt(run, variant):
    from pilotopt_edge import Brain
    from pilotopt_edge.check import check

    done, out = _deploy(run, variant, "edge")
    brain = Brain.load(out)
    got = np.array([brain.step(f) for f in run["frames"]])
    want = _pilotopt_commands(run["variants"] / variant, run["frames"])
    assert np.abs(got - want).max() <= 1e-5
    r = check(str(out))
    assert r["ok"] and r["frames"] == 20 and r["max_abs_dv"] <= 1e-5
    manifest = json.loads((out / "deploy.json").read_text())
    assert manifest["clipped"] is False and manifest["variant"] == variant


def test_ros_target_writes_the_node_script(run):
    done, out = _deploy(run, "onnx_fp32", "ros")
    script = (out / "run_node.sh").read_text()
    assert "pilotopt-edge ros" in script and "/F1ROS/cameraL/image_raw" in script and "/F1ROS/cmd_vel" in script
    assert (out / "deploy.json").is_file()


def _cli(*args, cwd=None):
    exe = Path(sys.executable).with_name("pilotopt")
    return subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True, timeout=600, cwd=cwd)


def _edge_cli(*args):
    exe = Path(sys.executable).with_name("pilotopt-edge")
    return subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True, timeout=300)


def test_bad_input_is_one_line(run, tmp_path):
    # a runtime the car cannot run
    r = _cli("deploy", "--variant", run["variants"] / "torch_static", "--target", "edge", "--out", tmp_path / "x")
    assert r.returncode == 2 and "no NumPy-only runtime" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "x").exists()
    r = _cli("deploy", "--variant", run["variants"] / "onnx_fp32", "--target", "jetson", "--out", tmp_path / "x")
    assert r.returncode == 2 and "unknown deploy target 'jetson'" in r.stderr
    # an altered model is refused before it drives
    done, out = _deploy(run, "onnx_fp32", "edge")
    altered = tmp_path / "altered"
    import shutil

    shutil.copytree(out, altered)
    blob = bytearray((altered / "model.onnx").read_bytes())
    blob[-10] ^= 0xFF
    (altered / "model.onnx").write_bytes(bytes(blob))
    r = _edge_cli("check", altered)
    assert r.returncode == 2 and "sha256 mismatch" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    (altered / "model.onnx").unlink()
    r = _edge_cli("check", altered)
    assert r.returncode == 2 and "model.onnx is missing" in r.stderr
    # a frame of the wrong size
    from pilotopt_edge import Brain, EdgeError

    with pytest.raises(EdgeError, match="640 x 480"):
        Brain.load(out).step(np.zeros((240, 320, 3), np.uint8))


def test_edge_bench_drives_the_simulator_at_its_speed(run, tmp_path):
    done, out = _deploy(run, "onnx_fp32", "edge")
    r = _edge_cli("bench", out, "--iterations", "30", "--out", tmp_path / "bench.json")
    assert r.returncode == 0, r.stderr
    bench = json.loads((tmp_path / "bench.json").read_text())
    assert len(bench["brain_step_samples_ms"]) == 30 and bench["device"]["pid"] > 0
    assert bench["brain_step"]["p50_ms"] >= bench["model_call"]["p50_ms"] > 0
    r = _cli("sim", "drive", "--model", run["variants"] / "onnx_fp32", "--mode", "realtime", "--latency-samples",
             tmp_path / "bench.json", "--timeout", "3", "--json", tmp_path / "drive.json")
    assert r.returncode == 0, r.stderr[-800:]
    m = json.loads((tmp_path / "drive.json").read_text())["metrics"]
    assert m["latency_source"].startswith("distribution")


# -- the edge package on its own ------------------------------------------------------------------
ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = ("torch", "tensorflow", "tf-keras", "opencv-python", "opencv-python-headless", "scipy", "pilotopt",
             "ai-edge-litert", "openvino", "numba")


_in_venv = in_venv


@pytest.fixture(scope="module")
def edge_venv(tmp_path_factory):
    """The wheel built from edge/, installed with its [onnxruntime] extra into a new venv."""
    return build_edge_venv(tmp_path_factory.mktemp("edge_venv"), ("onnxruntime",))


@pytest.fixture(scope="module")
def deployed(run):
    from pilotopt.deploy import deploy_variant

    out = {name: deploy_variant(run["variants"] / name, "edge", run["root"] / f"edge-{name}",
                                frames=run["root"] / "frames.npz") for name in ("onnx_fp32", "openvino_int8")}
    return {"root": run["root"], "frames": run["frames"], "folders": {k: Path(v["folder"]) for k, v in out.items()},
            "variants": run["variants"]}


def test_the_wheel_brings_numpy_and_one_runtime_only(edge_venv):
    r = _in_venv(edge_venv["python"], "-m", "pip", "list", "--format=json")
    names = {p["name"].lower() for p in json.loads(r.stdout)}
    assert {"pilotopt-edge", "numpy", "onnxruntime"} <= names
    assert not names & set(FORBIDDEN), names & set(FORBIDDEN)


def test_brain_step_on_the_edge_equals_pilotopt(edge_venv, deployed):
    from pilotopt.artifacts import open_artifact
    from pilotopt.runtimes import load_artifact_predictor
    from pilotopt.preprocess import crop_resize

    folder = deployed["folders"]["onnx_fp32"]
    code = ("import json, sys, numpy as np; from pilotopt_edge import Brain; b = Brain.load(sys.argv[1]); "
            "f = np.load(sys.argv[2])['frames']; print(json.dumps([b.step(x) for x in f]))")
    r = _in_venv(edge_venv["python"], "-c", code, folder, deployed["root"] / "frames.npz")
    assert r.returncode == 0, r.stderr[-2000:]
    got = np.asarray(json.loads(r.stdout))
    art = open_artifact(deployed["variants"] / "onnx_fp32")
    p = load_artifact_predictor(art)
    views = np.stack([crop_resize(f, art.contract.geometry) for f in deployed["frames"]])
    v, w = art.contract.commands(p.raw.predict(art.contract.encode(views)))
    assert np.abs(got - np.stack([v, w], 1)).max() <= 1e-5
    r = _in_venv(edge_venv["bin"] / "pilotopt-edge", "check", folder)
    assert r.returncode == 0 and r.stdout.startswith("OK: 20 frames"), r.stdout + r.stderr


def test_a_runtime_extra_not_installed_names_the_fix(edge_venv, deployed):
    r = _in_venv(edge_venv["bin"] / "pilotopt-edge", "check", deployed["folders"]["openvino_int8"])
    assert r.returncode == 2
    assert r.stderr.strip() == "error: runtime 'openvino' is not installed here: pip install 'pilotopt-edge[openvino]'"


def test_the_edge_code_parses_as_python_3_8():
    import ast

    for path in (ROOT / "edge" / "src" / "pilotopt_edge").glob("*.py"):
        ast.parse(path.read_text(), filename=str(path), feature_version=(3, 8))
