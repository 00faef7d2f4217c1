"""Portable-runtime techniques (ONNX Runtime, OpenVINO, TensorRT) from a PyTorch baseline: each
test checks the property that defines the variant, read back from the artifact itself, on a tiny
student model and a tiny generated data set, and that outputs stay near the baseline's."""

from __future__ import annotations


import numpy as np
import pytest
from _fixtures import sha256, torch_checkpoint

from pilotopt.errors import BadInputError
from pilotopt.techniques import get_technique, optimize
from pilotopt.variants import read_variant

ONNX = ["onnx_fp32", "onnx_fp16", "onnx_int8_dynamic", "onnx_int8_static"]
OPENVINO = ["openvino_fp32", "openvino_int8"]
TENSORRT = ["tensorrt_fp32", "tensorrt_fp16", "tensorrt_int8"]
CALIBRATION = 32
SETTINGS = {"onnx_int8_static": {"calibration_frames": CALIBRATION}, "openvino_int8": {"calibration_frames": CALIBRATION},
            "tensorrt_int8": {"calibration_frames": CALIBRATION}}




@pytest.fixture(scope="module")
def env(tmp_path_factory, tiny_data):
    """Every portable technique once on a tiny torch student (each in its own child process)."""
    from pilotopt.data import DataConfig, load_splits

    root = tmp_path_factory.mktemp("portable")
    data = tiny_data
    model = root / "student.pt"
    torch_checkpoint(model, "pilotnet_student")
    before = sha256(model)
    out = root / "artifacts"
    variants = optimize(model, ONNX + OPENVINO + TENSORRT, [data], out, cache_dir=root / "cache",
                        test_circuits=("simple",), settings=SETTINGS)
    split = load_splits(DataConfig(roots=[data], test_circuits=("simple",), cache_dir=root / "cache")).train
    x, _ = split.batch(np.arange(min(16, len(split))))
    return {"root": root, "data": data, "model": model, "cache": root / "cache", "out": out,
            "frames": x.astype(np.float32), "variants": {v.name: v for v in variants},
            "hash_before": before, "hash_after": sha256(model)}


def _artifact(env, name):
    v = env["variants"][name]
    assert v.status == "ok", (name, v.reason)
    return env["out"] / name / v.artifact


def _predict(path, runtime, x):
    from pilotopt.runtimes import load_predictor

    return load_predictor(path, runtime=runtime, threads=2).predict(x)


def _diff_to_baseline(env, name, x=None):
    x = env["frames"] if x is None else x
    ref = _predict(env["model"], "torch", x)
    got = _predict(_artifact(env, name), env["variants"][name].runtime, x)
    assert got.dtype == np.float32 and got.shape == ref.shape == (len(x), 2)
    return float(np.max(np.abs(got - ref))), float(np.max(np.abs(ref)))


def _close_to_baseline(env, name, atol=0.05, rtol=0.2):
    err, scale = _diff_to_baseline(env, name)
    assert err < atol + rtol * scale, (name, err, scale)


def _onnx(env, name):
    import onnx

    return onnx.load(str(_artifact(env, name)))


def _weights(model):
    """name -> array of every Conv / Gemm / MatMul weight initializer, followed through Q/DQ nodes."""
    from onnx import numpy_helper

    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    producer = {o: n for n in model.graph.node for o in n.output}
    out = {}
    for node in model.graph.node:
        if node.op_type in ("Conv", "Gemm", "MatMul", "ConvInteger", "MatMulInteger"):
            name = node.input[1]
            while name not in inits and name in producer:  # weight -> DequantizeLinear -> op
                name = producer[name].input[0]
            if name in inits:
                out[name] = inits[name]
    return out


# -- every technique -------------------------------------------------------------------------------
def test_all_ok_tensorrt_skipped_naming_the_gpu_baseline_unchanged(env):
    assert env["hash_before"] == env["hash_after"]
    for name in ONNX + OPENVINO:
        v = env["variants"][name]
        assert v.status == "ok", (name, v.reason)
        on_disk = read_variant(env["out"] / name)
        assert on_disk.technique == name and on_disk.framework == "torch" and on_disk.baseline == "torch"
        assert on_disk.record["baseline_sha256"] == env["hash_before"] and on_disk.record["duration_s"] > 0
        files = {p.name for p in (env["out"] / name).iterdir()}  # the artifact only, no intermediates
        assert files == ({"model.onnx", "variant.json"} if name in ONNX
                         else {"model.xml", "model.bin", "variant.json"}), (name, files)
    for name in TENSORRT:
        v = env["variants"][name]
        assert v.status == "skipped" and "NVIDIA GPU" in v.reason and "TensorRT" in v.reason, (name, v.reason)
        assert read_variant(env["out"] / name).status == "skipped"
    assert not [p for p in env["out"].iterdir() if ".tmp-" in p.name]


def test_fp32_onnx_and_openvino_match_baseline_at_any_batch(env):
    for name in ("onnx_fp32", "openvino_fp32"):
        assert env["variants"][name].record["check_max_abs_diff"] <= 1e-3
        for x in (env["frames"][:1], env["frames"]):  # dynamic batch
            err, _ = _diff_to_baseline(env, name, x)
            assert err <= 1e-3, (name, len(x), err)
    model = _onnx(env, "onnx_fp32")
    assert all(a.dtype == np.float32 for a in _weights(model).values()) and len(_weights(model)) == 8
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param  # symbolic batch
    ov_rec = env["variants"]["openvino_fp32"].record
    assert ov_rec["compress_to_fp16"] is False and ov_rec["constant_dtypes"].get("f16", 0) == 0
    from pilotopt.runtimes import load_predictor

    pred = load_predictor(_artifact(env, "openvino_fp32"), runtime="openvino", threads=2)
    assert pred.describe()["inference_precision"] == "f32"  # not silently bf16


def test_onnx_fp16_half_weights_float_io(env):
    import onnx

    model = _onnx(env, "onnx_fp16")
    weights = _weights(model)
    assert len(weights) == 8 and all(a.dtype == np.float16 for a in weights.values())  # 5 conv + 3 dense
    assert not [t.name for t in model.graph.initializer if t.data_type == onnx.TensorProto.FLOAT]
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert model.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    rec = env["variants"]["onnx_fp16"].record
    assert rec["input_dtype"] == rec["output_dtype"] == "float" and rec["check_max_abs_diff"] <= 5e-2
    assert rec["ort_cpu_fallback_casts"] >= 0
    _close_to_baseline(env, "onnx_fp16", atol=1e-2, rtol=0.0)


def test_onnx_int8_dynamic_integer_weights_and_ops(env):
    model = _onnx(env, "onnx_int8_dynamic")
    ops = {n.op_type for n in model.graph.node}
    assert "DynamicQuantizeLinear" in ops and {"ConvInteger", "MatMulInteger"} <= ops
    assert not {"Conv", "Gemm", "MatMul"} & ops  # every conv / dense runs on integers
    weights = _weights(model)
    assert len(weights) == 8 and all(a.dtype in (np.int8, np.uint8) for a in weights.values())
    rec = env["variants"]["onnx_int8_dynamic"].record
    assert rec["quantized_ops"] == {"ConvInteger": 5, "MatMulInteger": 3}
    assert rec["size_bytes"] < 0.5 * env["variants"]["onnx_fp32"].record["size_bytes"]
    _close_to_baseline(env, "onnx_int8_dynamic")


def test_onnx_int8_static_qdq_calibrated_on_train(env):
    model = _onnx(env, "onnx_int8_static")
    ops = [n.op_type for n in model.graph.node]
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops
    weights = _weights(model)
    assert len(weights) == 8 and all(a.dtype == np.int8 for a in weights.values())
    dq_out = {o for n in model.graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    for node in model.graph.node:  # every conv / dense reads dequantized activations AND weights
        if node.op_type in ("Conv", "Gemm"):
            assert node.input[0] in dq_out and node.input[1] in dq_out, node.name
    inits = {t.name: t for t in model.graph.initializer}
    conv_w = next(w for w, a in weights.items() if a.ndim == 4)
    scale = next(n.input[1] for n in model.graph.node if n.op_type == "DequantizeLinear" and n.input[0] == conv_w)
    assert list(inits[scale].dims) == [weights[conv_w].shape[0]]  # per output channel
    rec = env["variants"]["onnx_int8_static"].record
    assert rec["calibration_from"] == "train" and rec["calibration_frames"] == CALIBRATION
    assert rec["format"] == "QDQ" and rec["quantized_ops"]["Conv"] == 5 and rec["quantized_ops"]["Gemm"] == 3
    _close_to_baseline(env, "onnx_int8_static")


def test_onnx_int8_static_weights_fit_in_7_bits_and_the_input_range_is_the_pixel_range(env):
    """7-bit weights (AVX2 u8s8 kernels saturate int16 pair sums with 8-bit ones), and the input's
    and the normalization's ranges come from black and white images, not from the calibration
    frames (whose brightest pixel is lower than a test frame's)."""
    from onnx import numpy_helper

    model = _onnx(env, "onnx_int8_static")
    weights = _weights(model)
    assert max(int(np.abs(a.astype(np.int32)).max()) for a in weights.values()) <= 64
    rec = env["variants"]["onnx_int8_static"].record
    assert rec["weight_bits"] == 7
    ranges = rec["input_ranges"]
    assert ranges[model.graph.input[0].name] == [0.0, 255.0]
    assert any(abs(lo + 1) < 1e-3 and abs(hi - 1) < 1e-3 for lo, hi in ranges.values())  # x / 127.5 - 1
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    pixels = {name for name, r in ranges.items() if r == [0.0, 255.0]}  # the input, transposed or not
    quants = [n for n in model.graph.node if n.op_type == "QuantizeLinear" and n.input[0] in pixels]
    assert quants and all(float(inits[q.input[1]]) == pytest.approx(1.0) and int(inits[q.input[2]]) == 0
                          for q in quants)  # uint8 pixels exactly: scale 1, zero point 0


def test_openvino_int8_fake_quantize_and_int8_weights(env):
    import openvino as ov

    model = ov.Core().read_model(str(_artifact(env, "openvino_int8")))
    types = [op.get_type_name() for op in model.get_ops()]
    assert types.count("FakeQuantize") >= 5  # activations of every conv at least
    int8_consts = [op for op in model.get_ops() if op.get_type_name() == "Constant"
                   and op.get_output_element_type(0).get_type_name() == "i8"]
    assert len(int8_consts) >= 8  # 5 conv + 3 dense weights stored int8
    rec = env["variants"]["openvino_int8"].record
    assert rec["calibration_from"] == "train" and rec["calibration_frames"] == CALIBRATION
    _close_to_baseline(env, "openvino_int8")


def _fq_upper_bounds(xml):
    import openvino as ov

    model = ov.Core().read_model(str(xml))
    return {op.get_friendly_name(): float(np.max(op.input_value(2).get_node().get_data()))
            for op in model.get_ops() if op.get_type_name() == "FakeQuantize"}


def test_openvino_int8_ranges_are_global_min_max(env):
    """NNCF's CNN default (mean of per-frame maxima) clips activations; ours takes the global max."""
    out = env["root"] / "mean_ranges"
    (v,) = optimize(env["model"], ["openvino_int8"], [env["data"]], out, cache_dir=env["cache"],
                    test_circuits=("simple",),
                    settings={"openvino_int8": {**SETTINGS["openvino_int8"], "range_estimator": "mean_minmax"}})
    assert v.status == "ok", v.reason
    ours, mean = _fq_upper_bounds(_artifact(env, "openvino_int8")), _fq_upper_bounds(out / "openvino_int8" / v.artifact)
    assert env["variants"]["openvino_int8"].record["range_estimator"] == "minmax" and ours.keys() == mean.keys()
    assert all(ours[k] >= mean[k] - 1e-6 for k in ours) and any(ours[k] > mean[k] * 1.01 for k in ours)


def test_static_quantization_is_deterministic(env):
    (v,) = optimize(env["model"], ["onnx_int8_static"], [env["data"]], env["root"] / "again", cache_dir=env["cache"],
                    test_circuits=("simple",), settings=SETTINGS)
    assert v.status == "ok", v.reason
    assert sha256(env["root"] / "again" / "onnx_int8_static" / v.artifact) == sha256(_artifact(env, "onnx_int8_static"))


def test_keep_float_leaves_the_named_layer_in_float_and_a_wrong_name_is_one_line(env):
    """Mixed precision for the search's per-layer sensitivity: the named Conv keeps its float
    weight and reads float activations; every other layer is still int8."""
    from pilotopt.techniques._onnx import compute_nodes

    layers = compute_nodes(_artifact(env, "onnx_int8_static"))
    assert len(layers) == 8
    keep = layers[0]
    (v,) = optimize(env["model"], ["onnx_int8_static"], [env["data"]], env["root"] / "mixed", cache_dir=env["cache"],
                    test_circuits=("simple",), settings={"onnx_int8_static": {**SETTINGS["onnx_int8_static"],
                                                                              "keep_float": keep}})
    assert v.status == "ok", v.reason
    import onnx

    model = onnx.load(str(env["root"] / "mixed" / "onnx_int8_static" / v.artifact))
    dq_out = {o for n in model.graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    by_name = {n.name: n for n in model.graph.node}
    assert by_name[keep].input[1] not in dq_out  # its weight is the float initializer
    assert all(by_name[n].input[1] in dq_out for n in layers[1:])
    assert v.record["float_nodes"] == [keep]
    (bad,) = optimize(env["model"], ["onnx_int8_static"], [env["data"]], env["root"] / "bad", cache_dir=env["cache"],
                      test_circuits=("simple",), settings={"onnx_int8_static": {"keep_float": "/no/such/Conv"}})
    assert bad.status == "failed" and "keep_float names node(s) /no/such/Conv" in bad.reason
    assert "\n" not in bad.reason


# -- availability and settings ---------------------------------------------------------------------
def test_tensorrt_unavailable_reasons(monkeypatch):
    import importlib.util

    import pilotopt.runtimes.tftrt_runtime as tftrt

    monkeypatch.setattr(tftrt, "nvidia_gpu", lambda: None)
    ok, why = get_technique("tensorrt_fp16").available()
    assert not ok and why.startswith("needs an NVIDIA GPU with TensorRT (none found:") and "nvidia-smi" in why
    monkeypatch.setattr(tftrt, "nvidia_gpu", lambda: "NVIDIA H100")
    ok, why = get_technique("tensorrt_int8").available()
    if importlib.util.find_spec("tensorrt") is None:
        assert not ok and "tensorrt package" in why and "nvidia-smi" not in why
    else:
        assert ok
    assert get_technique("tensorrt_int8").needs_data and not get_technique("tensorrt_fp32").needs_data
    assert get_technique("tensorrt_fp32").tolerance == 1e-3


@pytest.mark.parametrize("name, settings, words", [
    ("onnx_int8_static", {"calibration_frames": 0}, "calibration_frames"),
    ("onnx_int8_static", {"activation_type": "int4"}, "activation_type"),
    ("onnx_int8_static", {"calibrate_method": "magic"}, "calibrate_method"),
    ("openvino_int8", {"calibration_frames": -1}, "calibration_frames"),
    ("openvino_int8", {"preset": "fast"}, "preset"),
    ("openvino_int8", {"range_estimator": "max"}, "range_estimator"),
    ("tensorrt_int8", {"max_batch": 0}, "max_batch"),
])
def test_bad_settings_are_one_line_errors(name, settings, words):
    with pytest.raises(BadInputError) as err:
        get_technique(name).make_settings(settings)
    assert words in str(err.value) and "\n" not in str(err.value)


def test_calibration_frames_in_technique_defaults_reach_every_calibrating_runtime(tmp_path, tiny_data):
    """`technique_defaults: {calibration_frames: 50}` of a run config, through the path `pilotopt run`
    takes (load_config -> technique_overrides -> optimize), reaches LiteRT, ONNX Runtime, OpenVINO
    and PT2E: each variant's record says 50."""
    import json

    from pilotopt.pipeline.config import load_config, referenced_techniques, technique_overrides

    cfg_file = tmp_path / "run.yaml"
    items = ["torch_to_keras>tflite_int8", "onnx_int8_static", "openvino_int8", "torch_static"]
    # the pt2 backend: the same PT2E calibration without the XNNPACK lowering (tests/test_executorch.py)
    cfg_file.write_text(f"techniques: [{', '.join(items)}]\ntechnique_defaults: {{calibration_frames: 50}}\n"
                        "technique_settings: {torch_static: {backend: pt2}}\n")
    cfg = load_config(cfg_file)
    model = torch_checkpoint(tmp_path / "student.pt", "pilotnet_student")
    out = tmp_path / "variants"
    settings = technique_overrides(cfg, referenced_techniques(cfg, items, {}))  # what run.py hands optimize
    variants = optimize(model, items, [tiny_data], out, settings=settings, cache_dir=tmp_path / "cache",
                        test_circuits=("simple",))
    by_name = {v.name: v for v in variants}
    recorded = {}
    for name in ("torch_to_keras+tflite_int8", "onnx_int8_static", "openvino_int8", "torch_static"):
        v = by_name[name]
        assert v.status == "ok", (name, v.reason)
        recorded[name] = json.loads((out / name / "variant.json").read_text())["record"]["settings"]
    assert recorded["torch_to_keras+tflite_int8"]["tflite_int8"]["calibration_frames"] == 50  # a chain: per step
    for name in ("onnx_int8_static", "openvino_int8", "torch_static"):
        assert recorded[name]["calibration_frames"] == 50, name
    for name, v in by_name.items():  # and each one calibrated on that many training frames
        assert v.record["calibration_frames"] == 50, name
