"""Optimization techniques: the property that defines each technique, and the runner's contract
(child processes, failures isolated, atomic variant folders, reruns skip, bad input rejected)."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest

from pilotopt.errors import BadInputError
from pilotopt.techniques import (Result, get_technique, make_settings, optimize, register_technique,
                                 technique_names, unregister_technique)
from pilotopt.variants import read_variant

TF_TECHNIQUES = ["keras", "tflite_fp32", "tflite_dynamic_range", "tflite_float16", "tflite_int8",
                 "tflite_int8_fallback", "tf_prune"]
FAST = {"tflite_int8": {"calibration_frames": 50}, "tflite_int8_fallback": {"calibration_frames": 50}}


# -- test-only techniques (the child process imports this module to find them) ----------------------
@register_technique("test_raises", framework="tf", runtime="keras", description="test only: raises")
def _raises(ctx):
    raise ValueError("boom from the test technique")


@register_technique("test_segfault", framework="tf", runtime="keras", description="test only: SIGSEGV")
def _segfault(ctx):
    os.kill(os.getpid(), signal.SIGSEGV)


@register_technique("test_unavailable", framework="tf", runtime="keras", description="test only: unavailable",
                    available=lambda: (False, "needs a flux capacitor"))
def _never(ctx):
    raise AssertionError("must not run")


@register_technique("test_hangs", framework="tf", runtime="keras", description="test only: hangs")
def _hangs(ctx):
    import time

    time.sleep(120)


@pytest.fixture(scope="module", autouse=True)
def _cleanup_registry():
    yield
    for name in ("test_raises", "test_segfault", "test_unavailable", "test_hangs"):
        unregister_technique(name)


# -- fixtures --------------------------------------------------------------------------------------
def _sha(path: Path) -> str:
    from pilotopt.artifacts import artifact_digest

    return artifact_digest(path)  # the one content digest, as variant records carry it


@pytest.fixture(scope="module")
def setup(tmp_path_factory, tiny_data):
    from pilotopt.models import build_keras

    root = tmp_path_factory.mktemp("tech")
    data = tiny_data
    model = root / "student.h5"
    build_keras("pilotnet_student", seed=0).save(model)
    return {"root": root, "data": data, "model": model, "cache": root / "cache"}


def _run(setup, names, out, **kw):
    return optimize(setup["model"], names, [setup["data"]], out, cache_dir=setup["cache"],
                    test_circuits=("simple",), **kw)


@pytest.fixture(scope="module")
def done(setup):
    """Every TF technique once (each in its own child process)."""
    before = _sha(setup["model"])
    out = setup["root"] / "artifacts"
    variants = _run(setup, TF_TECHNIQUES, out, settings=FAST)
    return {"out": out, "variants": {v.name: v for v in variants}, "hash_before": before,
            "hash_after": _sha(setup["model"])}


@pytest.fixture(scope="module")
def frames(setup):
    from pilotopt.data import DataConfig, load_splits

    split = load_splits(DataConfig(roots=[setup["data"]], test_circuits=("simple",), cache_dir=setup["cache"])).train
    x, _ = split.batch(np.arange(min(16, len(split))))
    return x.astype(np.float32)


def _keras_out(setup, x):
    from pilotopt.runtimes import load_predictor

    return load_predictor(setup["model"], runtime="keras", threads=2).predict(x)


def _tensors(done, name):
    from pilotopt.techniques._tflite import describe_tensors

    v = done["variants"][name]
    assert v.status == "ok", v.reason
    return describe_tensors((done["out"] / name / v.artifact).read_bytes())


# -- every technique -------------------------------------------------------------------------------
def test_all_ok_and_input_model_unchanged(done):
    assert done["hash_before"] == done["hash_after"]
    for name in TF_TECHNIQUES:
        v = done["variants"][name]
        assert v.status == "ok", (name, v.reason)
        on_disk = read_variant(done["out"] / name)
        assert on_disk.technique == name and on_disk.artifact and (done["out"] / name / on_disk.artifact).exists()
        assert on_disk.record["baseline_sha256"] == done["hash_before"]
        assert "settings" in on_disk.record and on_disk.record["duration_s"] > 0
    assert not [p for p in done["out"].iterdir() if ".tmp-" in p.name]  # atomic: no leftovers


def test_fp32_and_keras_match_keras(done, setup, frames):
    from pilotopt.runtimes import load_predictor

    ref = _keras_out(setup, frames)
    for name in ("keras", "tflite_fp32"):
        v = done["variants"][name]
        got = load_predictor(done["out"] / name / v.artifact, runtime=v.runtime, threads=2).predict(frames)
        assert np.max(np.abs(got - ref)) < 1e-4, name
    assert _tensors(done, "tflite_fp32")["weight_tensor_dtypes"].keys() <= {"float32", "int32"}


def test_dynamic_range_int8_weights_float_activations(done):
    t = _tensors(done, "tflite_dynamic_range")
    assert t["weight_tensor_dtypes"].get("int8", 0) >= 6  # every conv/dense kernel
    assert set(t["activation_tensor_dtypes"]) == {"float32"}
    assert t["input_dtype"] == t["output_dtype"] == "float32"


def test_float16_weights(done):
    t = _tensors(done, "tflite_float16")
    assert t["weight_tensor_dtypes"].get("float16", 0) >= 6
    assert "float32" not in t["weight_tensor_dtypes"] and "int8" not in t["weight_tensor_dtypes"]


def test_int8_io_and_dequantized_outputs_close(done, setup, frames):
    from pilotopt.runtimes import load_predictor

    t = _tensors(done, "tflite_int8")
    assert t["input_dtype"] == t["output_dtype"] == "int8"
    assert set(t["activation_tensor_dtypes"]) == {"int8"}
    v = done["variants"]["tflite_int8"]
    assert v.record["calibration_frames"] == 50 and v.record["calibration_from"] == "train"
    pred = load_predictor(done["out"] / "tflite_int8" / v.artifact, runtime="litert", threads=2)
    assert pred.input_dtype == np.int8 and pred.output_dtype == np.int8
    got, ref = pred.predict(frames), _keras_out(setup, frames)
    assert got.dtype == np.float32
    assert np.max(np.abs(got - ref)) < 0.05 + 0.1 * np.max(np.abs(ref))


def test_int8_fallback_float_io_int8_inside(done):
    t = _tensors(done, "tflite_int8_fallback")
    assert t["input_dtype"] == t["output_dtype"] == "float32"
    assert t["activation_tensor_dtypes"].get("int8", 0) >= 5
    assert t["weight_tensor_dtypes"].get("int8", 0) >= 6
    assert "QUANTIZE" in t["operators"] and "DEQUANTIZE" in t["operators"]


def test_prune_reaches_target_sparsity(done):
    v = done["variants"]["tf_prune"]
    assert v.status == "ok", v.reason
    per_layer = v.record["sparsity_per_layer"]
    assert len(per_layer) >= 6 and min(per_layer.values()) >= 0.75
    assert v.record["settings"]["final_sparsity"] == 0.8


# -- the runner ------------------------------------------------------------------------------------
def test_rerun_skips_finished_variants(done, setup):
    stamps = {n: (done["out"] / n / "variant.json").stat().st_mtime_ns for n in TF_TECHNIQUES}
    again = _run(setup, TF_TECHNIQUES, done["out"], settings=FAST)
    assert all(v.status == "ok" and v.record.get("reused") for v in again)
    assert stamps == {n: (done["out"] / n / "variant.json").stat().st_mtime_ns for n in TF_TECHNIQUES}


def test_failures_are_isolated(setup, tmp_path):
    before = _sha(setup["model"])
    out = tmp_path / "a"
    vs = {v.name: v for v in _run(setup, ["test_raises", "test_segfault", "test_unavailable", "keras"], out)}
    vs.update({v.name: v for v in _run(setup, ["test_hangs"], out, timeout=3)})
    assert vs["test_hangs"].status == "failed" and "timed out" in vs["test_hangs"].reason
    assert vs["test_raises"].status == "failed" and "boom from the test technique" in vs["test_raises"].reason
    assert vs["test_segfault"].status == "failed" and "SIGSEGV" in vs["test_segfault"].reason
    assert vs["test_unavailable"].status == "skipped" and "flux capacitor" in vs["test_unavailable"].reason
    assert vs["keras"].status == "ok"
    for name in ("test_raises", "test_segfault", "test_unavailable", "test_hangs"):
        doc = json.loads((out / name / "variant.json").read_text())
        assert doc["status"] != "ok" and doc["artifact"] is None and "\n" not in doc["reason"]
    assert _sha(setup["model"]) == before


def test_unknown_technique_and_setting(setup, tmp_path):
    out = tmp_path / "never"
    with pytest.raises(BadInputError, match="unknown technique.*choose from.*tflite_int8"):
        _run(setup, ["tflite_int8", "no_such_thing"], out)
    with pytest.raises(BadInputError, match=r"unknown setting.*bogus.*calibration_frames"):
        _run(setup, ["tflite_int8"], out, settings={"tflite_int8": {"bogus": 1}})
    with pytest.raises(BadInputError, match="unknown technique"):
        _run(setup, ["keras"], out, settings={"nope": {"a": 1}})
    with pytest.raises(BadInputError, match="must be int"):
        make_settings("tflite_int8", get_technique("tflite_int8").settings_cls, {"calibration_frames": "many"})
    assert not out.exists()  # rejected before any work


def test_framework_mismatch_skips_without_replacing_ok_variants(done, tmp_path):
    from _fixtures import torch_checkpoint

    torch_ckpt = torch_checkpoint(tmp_path / "model.pt")
    before = (done["out"] / "tflite_fp32" / "variant.json").read_text()
    vs = optimize(torch_ckpt, "tflite_fp32,tflite_int8", None, done["out"])  # no data needed when skipped
    assert [v.status for v in vs] == ["skipped", "skipped"] and "TensorFlow" in vs[0].reason
    assert (done["out"] / "tflite_fp32" / "variant.json").read_text() == before


def test_an_input_model_that_cannot_load_stops_before_any_work(tmp_path):
    broken = tmp_path / "model.pt"
    broken.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(BadInputError, match="model.pt"):
        optimize(broken, "tflite_fp32", None, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_data_required(setup, tmp_path):
    with pytest.raises(BadInputError, match="need training data"):
        optimize(setup["model"], ["tflite_int8"], None, tmp_path / "x")


def test_settings_from_strings_and_config_file(tmp_path):
    from pilotopt.cli.optimize import parse_sets
    from pilotopt.techniques import read_config_file

    s = get_technique("tf_prune").make_settings(parse_sets(["tf_prune.final_sparsity=0.9", "tf_prune.epochs=3"])["tf_prune"])
    assert s.final_sparsity == 0.9 and s.epochs == 3
    cfg = tmp_path / "opt.yaml"
    cfg.write_text("tflite_int8:\n  calibration_frames: 20\n")
    assert read_config_file(cfg)[0] == {"tflite_int8": {"calibration_frames": 20}}
    with pytest.raises(BadInputError, match="technique.key=value"):
        parse_sets(["nodot=1"])


def test_cli_list_techniques_prints_every_name(monkeypatch):
    import typer
    from typer.testing import CliRunner

    from pilotopt.cli import progress
    from pilotopt.cli.optimize import list_app

    # the CLI's stdout console is made at import (when COLUMNS is read); give it the width the env asks
    monkeypatch.setattr(progress.out, "width", 250)

    app = typer.Typer()
    app.add_typer(list_app, name="list")
    result = CliRunner().invoke(app, ["list", "techniques"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    for name in technique_names():
        assert name in result.output
    assert "flux capacitor" in result.output


# -- TF-TRT (GPU only) -----------------------------------------------------------------------------
def test_tftrt_skipped_with_reason_without_gpu(setup, tmp_path, monkeypatch):
    import pilotopt.runtimes.tftrt_runtime as tftrt

    monkeypatch.setattr(tftrt, "nvidia_gpu", lambda: None)
    names = ["tftrt_fp32", "tftrt_fp16", "tftrt_int8"]
    vs = _run(setup, names, tmp_path / "trt")
    assert [v.status for v in vs] == ["skipped"] * 3
    assert all("NVIDIA GPU" in v.reason for v in vs)
    assert all(read_variant(tmp_path / "trt" / n).status == "skipped" for n in names)


def test_tftrt_on_a_gpu_box_names_the_tensorflow_build(monkeypatch):
    """With a GPU but the pinned TensorFlow (>= 2.18, no TensorRT), the reason says so."""
    import pilotopt.runtimes.tftrt_runtime as tftrt

    monkeypatch.setattr(tftrt, "nvidia_gpu", lambda: "NVIDIA H100")
    ok, why = get_technique("tftrt_int8").available()
    import tensorflow as tf

    major, minor = (int(p) for p in tf.__version__.split(".")[:2])
    if (major, minor) >= (2, 18):
        assert not ok and "built without TensorRT" in why and tf.__version__ in why
    assert get_technique("tftrt_int8").needs_data and not get_technique("tftrt_fp16").needs_data
