"""Training end to end on tiny generated data: both frameworks, caching, reproducibility, driving."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from pilotopt.errors import BadInputError
from pilotopt.sim.dataset import DatasetConfig, generate_dataset
from pilotopt.train import TrainConfig, train


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    # train on nurburgring, validate on another recording of it, test on simple
    generate_dataset(root, DatasetConfig(circuits=("nurburgring", "simple"), laps=0.08), workers=1)
    return root


def _cfg(data, out, tmp_path, **kw):
    base = dict(framework="torch", model="pilotnet_student", data=[data], out=out, epochs=2, batch_size=32,
                test_circuits=("simple",), cache_dir=tmp_path / "cache", seed=0, patience=3)
    base.update(kw)
    return TrainConfig(**base)


def test_torch_training_writes_model_metrics_curve_and_is_cached(data, tmp_path):
    out = tmp_path / "torch"
    m = train(_cfg(data, out, tmp_path))
    for f in ("model.pt", "model.torchscript.pt", "metrics.json", "training_curve.png"):
        assert (out / f).is_file(), f
    saved = json.loads((out / "metrics.json").read_text())
    for split in ("train", "val", "test"):
        assert saved["mse"][split]["n"] > 0
        assert set(saved["mse"][split]) >= {"v", "w", "mean"}
    assert saved["data"]["test"]["circuits"] == ["simple"] if isinstance(saved["data"].get("test"), dict) else True
    assert m["epochs_run"] == 2 and len(m["history"]) == 2
    again = train(_cfg(data, out, tmp_path))
    assert again.get("cached") is True  # nothing redone


def test_torch_training_is_reproducible(data, tmp_path):
    a = train(_cfg(data, tmp_path / "a", tmp_path))
    b = train(_cfg(data, tmp_path / "b", tmp_path))
    assert abs(a["best_val_loss"] - b["best_val_loss"]) < 1e-6
    c = train(_cfg(data, tmp_path / "c", tmp_path, seed=1))
    assert abs(a["best_val_loss"] - c["best_val_loss"]) > 1e-9


@pytest.mark.slow
def test_tf_training_writes_keras_formats(data, tmp_path):
    out = tmp_path / "tf"
    m = train(_cfg(data, out, tmp_path, framework="tf", epochs=1))
    assert (out / "model.h5").is_file() and (out / "saved_model" / "saved_model.pb").is_file()
    assert m["mse"]["test"]["mean"] is not None


def test_trained_model_drives_the_simulator(data, tmp_path):
    out = tmp_path / "drive"
    train(_cfg(data, out, tmp_path, epochs=1))
    from pilotopt.runtimes import load_predictor
    from pilotopt.sim.brains.model import ModelBrain
    from pilotopt.sim.closed_loop import DriveConfig, drive

    brain = ModelBrain(load_predictor(out))
    r = drive(brain, DriveConfig(circuit="simple", timeout=2.0))
    # a one-epoch model may leave the road quickly; what matters is that it ran as a brain
    assert r.metrics.brain_steps >= 1 and r.metrics.mean_inference_time > 0
    assert r.metrics.error is None and r.brain["runtime"] == "torch"


def test_same_preprocessing_for_tf_and_torch_paths(data, tmp_path):
    """Both frameworks get their input from one NumPy preprocessing; the arrays are identical."""
    from pilotopt.data import DataConfig, load_splits

    splits = load_splits(DataConfig(roots=[data], test_circuits=("simple",), cache_dir=tmp_path / "cache"))
    x, _ = splits.test.batch(np.arange(4))
    import tensorflow as tf
    import torch

    assert np.array_equal(torch.from_numpy(x).float().numpy(), tf.convert_to_tensor(x.astype(np.float32)).numpy())


def test_bad_training_inputs(data, tmp_path):
    with pytest.raises(BadInputError, match="epochs"):
        _cfg(data, tmp_path / "x", tmp_path, epochs=0).validate()
    with pytest.raises(BadInputError, match="unknown model"):
        _cfg(data, tmp_path / "x", tmp_path, model="resnet").validate()
    with pytest.raises(BadInputError, match="montreal"):
        train(_cfg(data, tmp_path / "x", tmp_path, test_circuits=("montreal",)))
    with pytest.raises(BadInputError):
        train(_cfg(tmp_path / "missing", tmp_path / "x", tmp_path))


def test_train_cli_one_line_errors(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "pilotopt", "train", "--data", str(tmp_path / "none"),
                           "--out", str(tmp_path / "o")], capture_output=True, text=True,
                          env=dict(os.environ), timeout=300)
    assert proc.returncode == 2 and proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr


def _copy_recording(data, tmp_path, name="nurburgring_clockwise_1"):
    import shutil

    root = tmp_path / "bad"
    shutil.copytree(data / name, root / name)
    shutil.copytree(data / "simple_clockwise_1", root / "simple_clockwise_1")
    return root, root / name


@pytest.mark.parametrize("damage, fragment", [
    ("corrupt_png", "3.png"),
    ("nan_label", "data.csv"),
    ("missing_csv", "data.csv"),
    ("missing_w", "w"),
    ("wrong_size", "3.png"),
])
def test_train_cli_bad_data_is_one_line(data, tmp_path, damage, fragment):
    from PIL import Image

    root, rec = _copy_recording(data, tmp_path)
    csv_path = rec / "data.csv"
    if damage == "corrupt_png":
        (rec / "3.png").write_bytes((rec / "3.png").read_bytes()[:100])
    elif damage == "nan_label":
        lines = csv_path.read_text().splitlines()
        parts = lines[4].split(",")
        parts[2] = "nan"
        lines[4] = ",".join(parts)
        csv_path.write_text("\n".join(lines) + "\n")
    elif damage == "missing_csv":
        csv_path.unlink()
    elif damage == "missing_w":
        lines = [",".join(x for i, x in enumerate(line.split(",")) if i != 2) for line in csv_path.read_text().splitlines()]
        csv_path.write_text("\n".join(lines) + "\n")
    elif damage == "wrong_size":
        Image.new("RGB", (320, 240)).save(rec / "3.png")
    proc = subprocess.run([sys.executable, "-m", "pilotopt", "train", "--data", str(root), "--out", str(tmp_path / "o"),
                           "--test-circuits", "simple", "--cache-dir", str(tmp_path / "cache"), "--epochs", "1"],
                          capture_output=True, text=True, env=dict(os.environ), timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], proc.stderr


def test_sim_drive_cli_with_a_trained_model(data, tmp_path):
    out = tmp_path / "m"
    train(_cfg(data, out, tmp_path, epochs=1))
    proc = subprocess.run([sys.executable, "-m", "pilotopt", "sim", "drive", "--model", str(out), "--circuit", "simple",
                           "--timeout", "2", "--json", str(tmp_path / "r.json")],
                          capture_output=True, text=True, env=dict(os.environ), timeout=300)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["brain"]["runtime"] == "torch" and doc["metrics"]["mean_inference_time"] > 0
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    proc = subprocess.run([sys.executable, "-m", "pilotopt", "sim", "drive", "--model", str(broken)],
                          capture_output=True, text=True, env=dict(os.environ), timeout=300)
    assert proc.returncode == 2 and "broken.pt" in proc.stderr and "Traceback" not in proc.stderr
