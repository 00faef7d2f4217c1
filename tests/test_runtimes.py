"""Deployment runtimes and exporters: every runtime computes the same function as the framework
baseline, quantized LiteRT models are dequantized, bad files and shapes give one-line errors.

Models here are tiny and random-weight (pilotnet_student built in Keras, its weights copied into
the torch model with keras_to_torch, so the torch and tf sides compute the same function); no
test depends on /work/runs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pilotopt.errors import BadInputError, RuntimeUnavailable
from pilotopt.runtimes import load_predictor
from pilotopt.techniques import fp32_conversions, optimize
from pilotopt.variants import read_variant

THREADS = 2
TORCH_SIDE = ["torch", "torchscript", "torch_export", "onnx_fp32", "openvino_fp32"]
TF_SIDE = ["keras", "tflite_fp32"]
MODEL = "pilotnet_student"


# -- fixtures ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def frames() -> np.ndarray:
    """Six real preprocessed camera frames (uint8-valued float32) rendered by the simulator."""
    from pilotopt.sim.camera import CameraModel, PilotNetView
    from pilotopt.sim.circuits import load_circuit
    from pilotopt.sim.render import Renderer

    track = load_circuit("simple")
    camera = CameraModel()
    renderer, view = Renderer(track, camera), PilotNetView(camera)
    idx = np.linspace(0, len(track.points) - 1, 6).astype(int)
    out = [renderer.render_view(view, (track.points[i, 0], track.points[i, 1], track.heading_at(i)), k)
           for k, i in enumerate(idx)]
    return np.stack(out).astype(np.float32)


@pytest.fixture(scope="module")
def keras_model():
    from pilotopt.frameworks import import_tf

    import_tf(THREADS)
    from pilotopt.models import build_keras

    return build_keras(MODEL, seed=3)


@pytest.fixture(scope="module")
def baselines(tmp_path_factory, keras_model) -> dict[str, Path]:
    """The same random weights saved as a torch checkpoint and as a Keras .h5."""
    from pilotopt.frameworks import import_torch

    torch = import_torch(THREADS)
    from pilotopt.models import build_torch, keras_to_torch

    root = tmp_path_factory.mktemp("baselines")
    net = keras_to_torch(keras_model, build_torch(MODEL, seed=0))
    torch.save({"format": "pilotopt.torch/1", "model": MODEL, "state_dict": net.state_dict()}, root / "model.pt")
    keras_model.save(root / "model.h5")
    return {"torch": root / "model.pt", "tf": root / "model.h5"}


@pytest.fixture(scope="module")
def exported(tmp_path_factory, baselines) -> tuple[Path, dict]:
    """Both baselines exported into ONE artifacts folder (default targets)."""
    out = tmp_path_factory.mktemp("artifacts")
    variants = optimize(baselines["torch"], fp32_conversions("torch"), None, out, threads=THREADS)
    variants += optimize(baselines["tf"], fp32_conversions("tf"), None, out, threads=THREADS)
    return out, {v.name: v for v in variants}


@pytest.fixture(scope="module")
def reference(baselines, frames) -> np.ndarray:
    return load_predictor(baselines["torch"], threads=THREADS).predict(frames)


def _artifact(exported, name) -> Path:
    out, variants = exported
    return out / name / variants[name].artifact


# -- exports and agreement ------------------------------------------------------------------------


def test_export_writes_a_variant_folder_per_target(exported):
    out, variants = exported
    assert list(variants) == TORCH_SIDE + ["tensorrt_fp32"] + TF_SIDE
    for name in TORCH_SIDE + TF_SIDE:
        v = variants[name]
        assert v.status == "ok", (name, v.reason)
        on_disk = read_variant(out / name)
        assert on_disk == v and (out / name / v.artifact).exists()
        assert v.framework == ("tf" if name in TF_SIDE else "torch")
        assert v.baseline == (None if name in ("torch", "keras") else ("keras" if name in TF_SIDE else "torch"))
        assert v.record["check_max_abs_diff"] < 1e-4 and v.record["size_bytes"] > 10_000
    trt = variants["tensorrt_fp32"]
    assert trt.status == "skipped" and "NVIDIA" in trt.reason and read_variant(out / "tensorrt_fp32").artifact is None
    assert variants["onnx_fp32"].record["opset"] >= 17
    assert variants["openvino_fp32"].record["compress_to_fp16"] is False
    assert (out / "openvino_fp32" / "model.bin").is_file()
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temp folders left behind


@pytest.mark.parametrize("name", TORCH_SIDE + TF_SIDE)
def test_every_runtime_matches_the_baseline(exported, frames, reference, name):
    v = exported[1][name]
    path = _artifact(exported, name)
    p = load_predictor(path, runtime=v.runtime, threads=THREADS)
    assert p.runtime == v.runtime
    assert type(load_predictor(path, threads=THREADS)) is type(p)  # detected from the file alone
    y = p.predict(frames)
    assert y.shape == (len(frames), 2) and y.dtype == np.float32
    np.testing.assert_allclose(y, reference, atol=1e-4, rtol=0)  # torch reference: tf side too (same weights)
    one = p.predict(frames[:1])  # the batch size can change between calls
    np.testing.assert_allclose(one, y[:1], atol=1e-5, rtol=0)
    np.testing.assert_allclose(p.predict(frames[:4]), y[:4], atol=1e-5, rtol=0)
    assert p.sequence_length == 1


def test_openvino_runs_fp32_not_bf16(exported):
    import openvino as ov

    p = load_predictor(_artifact(exported, "openvino_fp32"), threads=THREADS)
    assert p.property("INFERENCE_PRECISION_HINT") == ov.Type.f32
    assert int(p.property("INFERENCE_NUM_THREADS")) == THREADS
    assert p.describe()["inference_precision"] == "f32"
    core = ov.Core()
    if "BF16" in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
        # the trap the hint avoids: without it this CPU would run the fp32 model in bf16
        plain = core.compile_model(core.read_model(str(_artifact(exported, "openvino_fp32"))), "CPU")
        assert plain.get_property("INFERENCE_PRECISION_HINT") == ov.Type.bf16
        from pilotopt.runtimes.openvino_runtime import OpenVINOPredictor

        bf16 = OpenVINOPredictor(_artifact(exported, "openvino_fp32"), threads=THREADS, precision="bf16")
        assert bf16.property("INFERENCE_PRECISION_HINT") == ov.Type.bf16


def test_the_weights_file_of_an_openvino_ir_stands_for_the_ir(exported, frames):
    """Users pass model.bin as often as model.xml: both open the same IR and predict the same."""
    from pilotopt.artifacts import open_artifact

    xml = _artifact(exported, "openvino_fp32")
    art = open_artifact(xml.with_suffix(".bin"))
    assert art.kind.name == "openvino" and art.path == xml
    np.testing.assert_array_equal(load_predictor(xml.with_suffix(".bin"), threads=THREADS).predict(frames[:4]),
                                  load_predictor(xml, threads=THREADS).predict(frames[:4]))


def test_openvino_precision_from_variant_record(exported, tmp_path):
    folder = tmp_path / "openvino_bf16"
    shutil.copytree(exported[0] / "openvino_fp32", folder)
    doc = json.loads((folder / "variant.json").read_text())
    doc["record"]["inference_precision"] = "bf16"
    (folder / "variant.json").write_text(json.dumps(doc))
    assert load_predictor(folder / "model.xml", threads=THREADS).precision == "bf16"
    from pilotopt.runtimes.openvino_runtime import OpenVINOPredictor

    with pytest.raises(BadInputError, match="int4"):
        OpenVINOPredictor(folder / "model.xml", precision="int4")


def test_export_records_a_failing_target_and_goes_on(baselines, tmp_path):
    """Export targets are techniques run in child processes: one that fails is recorded with its
    reason and the others still run."""
    import sys

    plug = tmp_path / "plug"
    plug.mkdir()
    (plug / "pilotopt_test_broken_export.py").write_text(
        "from pilotopt.techniques import register_technique\n"
        "@register_technique('test_broken_export', framework='torch', runtime='onnxruntime', description='x')\n"
        "def apply(ctx):\n    raise RuntimeError('exporter exploded')\n")
    sys.path.insert(0, str(plug))
    try:
        import pilotopt_test_broken_export  # noqa: F401 - registers the technique

        variants = {v.name: v for v in optimize(baselines["torch"], ["test_broken_export", "torch"], None,
                                                tmp_path / "art")}
    finally:
        sys.path.remove(str(plug))
        from pilotopt.techniques import unregister_technique

        unregister_technique("test_broken_export")
    v = variants["test_broken_export"]
    assert v.status == "failed" and "exporter exploded" in v.reason
    assert read_variant(tmp_path / "art" / "test_broken_export").status == "failed"
    assert variants["torch"].status == "ok"


def test_export_crosses_frameworks_only_through_a_maintained_converter(exported, baselines, tmp_path):
    shutil.copytree(exported[0] / "tflite_fp32", tmp_path / "tflite_fp32")
    (v,) = optimize(baselines["torch"], ["tflite_fp32"], None, tmp_path)  # no PyTorch -> Keras converter
    assert v.status == "skipped" and "needs Keras" in v.reason
    assert read_variant(tmp_path / "tflite_fp32").status == "ok"  # the tf export already there is kept
    (v,) = optimize(baselines["tf"], ["onnx_fp32"], None, tmp_path / "fresh")  # Keras -> ONNX: tf2onnx
    assert v.status == "ok" and v.record["exporter"] == "tf2onnx.convert.from_keras", v.reason
    assert v.record["check_max_abs_diff"] < 1e-4


def test_export_bad_arguments(baselines, exported, tmp_path):
    from pilotopt.bench.runtimes import bench_runtimes

    with pytest.raises(BadInputError, match="tflite_int3"):
        optimize(baselines["torch"], ["tflite_int3"], None, tmp_path)
    with pytest.raises(BadInputError, match="not a trained baseline"):
        bench_runtimes([_artifact(exported, "onnx_fp32")])
    with pytest.raises(BadInputError, match="does not exist"):
        optimize(tmp_path / "nope.pt", fp32_conversions("torch"), None, tmp_path)


# -- full-integer LiteRT ----------------------------------------------------------------------------


@pytest.fixture(scope="module", params=["int8", "uint8"])
def int8_tflite(request, tmp_path_factory, keras_model, frames):
    from pilotopt.techniques._tflite import convert_keras
    from pilotopt.frameworks import import_tf

    tf = import_tf()
    rng = np.random.default_rng(0)
    calib = np.concatenate([frames, rng.integers(0, 256, size=(4, 66, 200, 3)).astype(np.float32)])
    io_type = getattr(tf, request.param)

    def configure(converter):
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([calib[i:i + 1]] for i in range(len(calib)))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = io_type
        converter.inference_output_type = io_type

    path = tmp_path_factory.mktemp("int8") / f"model_{request.param}.tflite"
    path.write_bytes(convert_keras(keras_model, configure))
    return path, request.param


def test_full_integer_litert_is_dequantized(int8_tflite, frames, reference):
    path, dtype = int8_tflite
    p = load_predictor(path, threads=THREADS)
    assert p.runtime == "litert" and str(p.input_dtype) == dtype and str(p.output_dtype) == dtype
    y = p.predict(frames)
    assert y.dtype == np.float32 and y.shape == (len(frames), 2)
    scale = float(np.mean(reference ** 2))
    mse = float(np.mean((y - reference) ** 2))
    assert mse < 0.05 * scale + 1e-6, (mse, scale)  # a few percent of the signal, not thousands
    # the output really is dequantized: (raw - zero_point) * scale, and raw itself is far off
    p.predict(frames[:1])
    raw = p.raw_output(frames[:1])
    assert raw.dtype == np.dtype(dtype)
    q_scale, zero = p.output_details["quantization"]
    np.testing.assert_allclose(p.predict(frames[:1]), (raw.astype(np.float32) - zero) * q_scale, rtol=0, atol=1e-7)
    raw_mse = float(np.mean((raw.astype(np.float32) - reference[:1]) ** 2))
    assert raw_mse > 1000 * max(mse, 1e-6), (raw_mse, mse)


def test_litert_quantizes_inputs_with_scale_and_zero_point():
    from pilotopt.runtimes.litert import dequantize, quantize

    details = {"dtype": np.int8, "quantization": (1.0, -128)}
    q = quantize(np.array([0.0, 127.6, 255.0, 300.0, -5.0], np.float32), details)
    assert q.dtype == np.int8 and q.tolist() == [-128, 0, 127, 127, -128]  # rounded and clipped
    out = {"dtype": np.int8, "quantization": (0.5, 10)}
    assert dequantize(np.array([10, 12, -128], np.int8), out).tolist() == [0.0, 1.0, -69.0]
    assert quantize(np.array([3.2], np.float32), {"dtype": np.uint8, "quantization": (0.5, 3)}).tolist() == [9]


# -- fixed-batch models and input shapes ------------------------------------------------------------


@pytest.fixture(scope="module")
def narrow_models(tmp_path_factory):
    """Tiny models expecting 66 x 100 frames: a batch-1-only .tflite, and .onnx / .pt2 with a dynamic batch."""
    from pilotopt.techniques._onnx import export_torch_onnx
    from pilotopt.techniques._tflite import convert_keras
    from pilotopt.frameworks import import_tf, import_torch

    root = tmp_path_factory.mktemp("narrow")
    import_tf(THREADS)
    import tf_keras as keras

    inp = keras.Input((66, 100, 3), batch_size=1)
    h = keras.layers.Conv2D(4, 5, strides=4, activation="relu")(keras.layers.Rescaling(1 / 127.5, -1.0)(inp))
    out = keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(h))
    (root / "narrow.tflite").write_bytes(convert_keras(keras.Model(inp, out)))

    torch = import_torch(THREADS)

    class Narrow(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 5, stride=4)
            self.fc = torch.nn.Linear(4, 2)

        def forward(self, x):
            h = torch.relu(self.conv(x.permute(0, 3, 1, 2) / 127.5 - 1.0))
            return self.fc(h.mean(dim=(2, 3)))

    net = Narrow().eval()
    example = np.random.default_rng(0).integers(0, 256, (2, 66, 100, 3)).astype(np.float32)
    export_torch_onnx(net, example, root / "narrow.onnx")
    from pilotopt.techniques._pt2e import batch_dim

    program = torch.export.export(net, (torch.from_numpy(example),), dynamic_shapes=({0: batch_dim()},))
    torch.export.save(program, str(root / "narrow.pt2"))
    return root


def test_batch_one_litert_model_loops_over_the_batch(narrow_models):
    p = load_predictor(narrow_models / "narrow.tflite", threads=THREADS)
    assert p.dynamic_batch is False
    x = np.random.default_rng(1).integers(0, 256, (3, 66, 100, 3)).astype(np.float32)
    y = p.predict(x)
    assert y.shape == (3, 2)
    np.testing.assert_allclose(y, np.concatenate([p.predict(x[i:i + 1]) for i in range(3)]), atol=1e-6)


@pytest.mark.parametrize("file,runtime", [("narrow.tflite", None), ("narrow.onnx", None),
                                          ("narrow.onnx", "openvino"), ("narrow.pt2", None)])
def test_wrong_input_shape_names_expected_and_actual(narrow_models, file, runtime):
    p = load_predictor(narrow_models / file, runtime=runtime, threads=THREADS)
    ok = np.zeros((2, 66, 100, 3), np.float32)
    assert p.predict(ok).shape == (2, 2)
    with pytest.raises(BadInputError) as err:
        p.predict(np.zeros((2, 66, 200, 3), np.float32))
    msg = str(err.value)
    assert "(N, 66, 100, 3)" in msg and "(2, 66, 200, 3)" in msg and file in msg and "\n" not in msg


def test_a_programs_declared_input_is_read_without_loading_it(narrow_models, tmp_path):
    """open_artifact reads a .pt2's input from the archive's graph (the runtime loads the program
    once, not twice): the same shape the deserialized program gives, a fixed batch kept, and a
    file without that layout loaded in full."""
    import shutil
    import zipfile

    import torch

    from pilotopt.artifacts.kind_torch_export import archived_input_shape, declared_input, input_shape, load_program

    dynamic = narrow_models / "narrow.pt2"
    assert archived_input_shape(dynamic) == input_shape(load_program(dynamic)) == (None, 66, 100, 3)
    fixed = torch.export.export(torch.nn.Linear(5, 2), (torch.zeros(3, 5),))
    torch.export.save(fixed, str(tmp_path / "fixed.pt2"))
    assert archived_input_shape(tmp_path / "fixed.pt2") == input_shape(fixed) == (3, 5)
    stripped = tmp_path / "stripped.pt2"  # the graph's JSON renamed: the shape comes from a full load
    with zipfile.ZipFile(dynamic) as src, zipfile.ZipFile(stripped, "w") as dst:
        for item in src.infolist():
            dst.writestr(item.filename.replace("models/model.json", "models/model.json.bak"), src.read(item))
    assert archived_input_shape(stripped) is None
    shutil.copy(dynamic, tmp_path / "copy.pt2")
    assert declared_input(tmp_path / "copy.pt2") == (66, 100, 3)


# -- bad files, missing packages, no GPU ------------------------------------------------------------


@pytest.mark.parametrize("name,file", [("tflite_fp32", "model.tflite"), ("onnx_fp32", "model.onnx"),
                                       ("openvino_fp32", "model.xml"), ("openvino_fp32", "model.bin"),
                                       ("torch_export", "model.pt2")])
def test_truncated_file_is_a_one_line_bad_input(exported, tmp_path, name, file):
    folder = tmp_path / name
    shutil.copytree(exported[0] / name, folder)
    data = (folder / file).read_bytes()
    (folder / file).write_bytes(data[: len(data) // 2])
    artifact = folder / exported[1][name].artifact
    with pytest.raises(BadInputError) as err:
        load_predictor(artifact, threads=THREADS).predict(np.zeros((1, 66, 200, 3), np.float32))
    assert str(artifact) in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("suffix", [".onnx", ".tflite", ".xml", ".pt2"])
def test_wrong_format_is_bad_input(tmp_path, suffix):
    bad = tmp_path / f"model{suffix}"
    bad.write_bytes(b"PK\x03\x04 this is not a model" * 10)
    if suffix == ".xml":
        bad.with_suffix(".bin").write_bytes(b"\0" * 16)
    with pytest.raises(BadInputError, match=str(bad).replace(".", r"\.")):
        load_predictor(bad)


def test_tensorrt_is_skipped_without_a_gpu(tmp_path):
    engine = tmp_path / "model.engine"
    engine.write_bytes(b"not an engine")
    with pytest.raises(RuntimeUnavailable, match="no NVIDIA GPU/TensorRT"):
        load_predictor(engine)


@pytest.mark.parametrize("module,name", [("onnxruntime", "onnx_fp32"), ("openvino", "openvino_fp32"),
                                         ("ai_edge_litert.interpreter", "tflite_fp32")])
def test_missing_package_is_runtime_unavailable(exported, monkeypatch, module, name):
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` raise ImportError
    with pytest.raises(RuntimeUnavailable, match="not installed"):
        load_predictor(_artifact(exported, name))


# -- the bench command ------------------------------------------------------------------------------


def _cli(*args):
    env = dict(os.environ, COLUMNS="200", TF_USE_LEGACY_KERAS="1")
    return subprocess.run([sys.executable, "-m", "pilotopt", *args], capture_output=True, text=True, env=env,
                          timeout=600)


def test_bench_runtimes_bad_model_is_one_line_error(tmp_path):
    proc = _cli("bench", "runtimes", "--model", str(tmp_path / "missing.pt"), "--out", str(tmp_path / "b.json"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().startswith("error: ") and "missing.pt" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_bench_runtimes_writes_every_row(baselines, exported, tmp_path):
    """The bench over the export's folder: its conversions are reused as finished (the export test
    checks them), every runtime is measured here."""
    import shutil

    shutil.copytree(exported[0], tmp_path / "art")
    out = tmp_path / "bench.json"
    proc = _cli("bench", "runtimes", "--model", str(baselines["torch"]), "--model", str(baselines["tf"]),
                "--threads", "2", "--batch", "8", "--min-calls", "10", "--min-seconds", "0.05", "--out", str(out),
                "--artifacts", str(tmp_path / "art"))
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(out.read_text())
    rows = {r["name"]: r for r in doc["rows"]}
    assert set(rows) == set(TORCH_SIDE + TF_SIDE + ["tensorrt_fp32"])
    assert rows["tensorrt_fp32"]["status"] == "skipped"
    assert set(doc["references"]) == {"torch", "litert"}
    for name in TORCH_SIDE + TF_SIDE:
        r = rows[name]
        assert r["status"] == "ok", (name, r["reason"])
        assert r["latency_b1"]["n"] >= 10 and r["throughput_fps"] > 0 and r["agrees"], r
        assert r["speedup_b1_vs_torch"] > 0 and r["speedup_b1_vs_litert"] > 0
    assert rows["torch"]["speedup_b1_vs_torch"] == pytest.approx(1.0)
    assert rows["tflite_fp32"]["speedup_batch_vs_litert"] == pytest.approx(1.0)
    assert doc["settings"]["threads"] == 2 and doc["settings"]["batch"] == 8
    assert "onnx_fp32" in proc.stdout and "tflite_fp32" in proc.stdout  # the table
    assert read_variant(tmp_path / "art" / "onnx_fp32").status == "ok"


@pytest.mark.slow
def test_recurrent_model_on_every_runtime(tmp_path, keras_model):
    """deepest_lstm_tinypilotnet (N, T, 66, 200, 3): every runtime, including a fixed-batch-1
    LiteRT conversion (ConvLSTM's TensorList ops only lower to builtins at a fixed batch)."""
    from pilotopt.frameworks import import_torch
    from pilotopt.models import build_keras, build_torch, get_model_spec, keras_to_torch

    torch = import_torch(THREADS)
    name = "deepest_lstm_tinypilotnet"
    k = build_keras(name, seed=1)
    k.save(tmp_path / "model.h5")
    net = keras_to_torch(k, build_torch(name))
    torch.save({"model": name, "state_dict": net.state_dict()}, tmp_path / "model.pt")
    out = tmp_path / "art"
    variants = (optimize(tmp_path / "model.pt", fp32_conversions("torch"), None, out)
                + optimize(tmp_path / "model.h5", fp32_conversions("tf"), None, out))
    spec = get_model_spec(name)
    x = np.random.default_rng(0).integers(0, 256, (3, *spec.sample_shape)).astype(np.float32)
    ref = load_predictor(tmp_path / "model.pt").predict(x)
    for v in variants:
        if v.name == "tensorrt_fp32":
            continue
        assert v.status == "ok", (v.name, v.reason)
        p = load_predictor(out / v.name / v.artifact, runtime=v.runtime)
        if v.runtime != "torchscript":  # the TorchScript predictor does not report it (torch_eager.py)
            assert p.sequence_length == spec.sequence_length, v.name
        np.testing.assert_allclose(p.predict(x), ref, atol=1e-3 * float(np.abs(ref).max()), rtol=0)
    assert [v for v in variants if v.name == "tflite_fp32"][0].record["fixed_batch"] == 1
