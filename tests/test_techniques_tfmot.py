"""TF-MOT techniques: each test checks the property that defines the technique on a tiny student
model fine-tuned briefly on a tiny generated data set, and that outputs stay near the float model."""

from __future__ import annotations

import numpy as np
import pytest

from pilotopt.techniques import optimize

FAST = {"epochs": 1, "batch_size": 32, "max_train_frames": 128}
SETTINGS = {
    "tf_prune_dynamic_range": dict(FAST),
    "tf_prune_2x4": dict(FAST),
    "tf_qat": {**FAST, "calibration_frames": 32},
    "tf_cluster": dict(FAST),
}


@pytest.fixture(scope="module")
def env(tmp_path_factory, tiny_data):
    from pilotopt.data import DataConfig, load_splits
    from pilotopt.models import build_keras

    root = tmp_path_factory.mktemp("tfmot")
    data = tiny_data
    model = root / "student.h5"
    build_keras("pilotnet_student", seed=0).save(model)
    split = load_splits(DataConfig(roots=[data], test_circuits=("simple",), cache_dir=root / "cache")).train
    x, _ = split.batch(np.arange(min(16, len(split))))
    return {"root": root, "data": data, "model": model, "cache": root / "cache", "frames": x.astype(np.float32),
            "out": root / "artifacts"}


def _variant(env, name):
    (v,) = optimize(env["model"], [name], [env["data"]], env["out"], cache_dir=env["cache"],
                    test_circuits=("simple",), settings={name: SETTINGS[name]})
    assert v.status == "ok", (name, v.reason)
    return v, env["out"] / name / v.artifact


def _predict(path, runtime, x):
    from pilotopt.runtimes import load_predictor

    return load_predictor(path, runtime=runtime, threads=2).predict(x)


def _close_to_float(env, path, x=None, atol=0.05, rtol=0.2):
    x = env["frames"] if x is None else x
    ref = _predict(env["model"], "keras", x)
    got = _predict(path, "litert", x)
    assert got.dtype == np.float32 and got.shape == ref.shape
    err = float(np.max(np.abs(got - ref)))
    assert err < atol + rtol * float(np.max(np.abs(ref))), err
    return err


def _constant_tensors(path):
    """name -> (dtype, array) of every constant tensor with data the interpreter can read."""
    from ai_edge_litert.interpreter import Interpreter

    from tensorflow.lite.python import schema_py_generated as fb

    fbm = fb.Model.GetRootAsModel(bytearray(path.read_bytes()), 0)
    graph = fbm.Subgraphs(0)
    const = set()
    for i in range(graph.TensorsLength()):  # a constant has a buffer with data
        buf = fbm.Buffers(graph.Tensors(i).Buffer())
        if buf is not None and (buf.DataLength() > 0 or buf.Offset() > 1):
            const.add(i)
    interp = Interpreter(model_path=str(path))
    interp.allocate_tensors()
    out = {}
    for d in interp.get_tensor_details():
        if d["index"] not in const:  # activations and inputs hold no defined data
            continue
        try:
            arr = interp.get_tensor(d["index"])
        except ValueError:  # activations (no data) cannot be read
            continue
        out[d["name"]] = (np.dtype(d["dtype"]), np.array(arr))
    return out


def test_prune_dynamic_range_int8_weights_keep_zeros(env):
    from pilotopt.techniques._tflite import describe_tensors

    v, path = _variant(env, "tf_prune_dynamic_range")
    t = describe_tensors(path.read_bytes())
    assert t["weight_tensor_dtypes"].get("int8", 0) >= 6  # every conv/dense kernel stored int8
    assert set(t["activation_tensor_dtypes"]) == {"float32"}
    assert t["input_dtype"] == t["output_dtype"] == "float32"
    int8_weights = [a for dt, a in _constant_tensors(path).values() if dt == np.int8 and a.ndim >= 2]
    assert len(int8_weights) >= 6
    for a in int8_weights:
        assert np.mean(a == 0) >= 0.75, float(np.mean(a == 0))
    assert min(v.record["sparsity_per_layer"].values()) >= 0.75
    _close_to_float(env, path, atol=0.1, rtol=0.5)  # pruned to 80 % with one short epoch


def test_prune_2x4_every_group_of_four_has_two_zeros(env):
    from pilotopt.techniques.tf_prune_2x4 import groups_along_input, is_m_by_n

    # the checker itself: input-channel groups, padded to 4
    k = np.ones((1, 1, 6, 2), np.float32)
    assert groups_along_input(k).shape == (4, 4) and not is_m_by_n(k)
    k[..., [0, 1, 4, 5], :] = 0
    assert is_m_by_n(k)

    v, path = _variant(env, "tf_prune_2x4")
    assert len(v.record["pruned_layers"]) == 8 and not v.record["skipped_layers"]  # 5 conv + 3 dense
    assert all(v.record["m_by_n_ok_per_layer"].values())
    # re-read the kernels from the .tflite: LiteRT stores conv kernels (out, h, w, in), dense (out, in)
    kernels = [a for dt, a in _constant_tensors(path).values() if dt == np.float32 and a.ndim in (2, 4)]
    assert len(kernels) >= 8
    for a in kernels:
        rows = a.reshape(-1, a.shape[-1])  # input channels last in LiteRT's layout
        pad = (-rows.shape[1]) % 4
        rows = np.concatenate([rows, np.zeros((rows.shape[0], pad), rows.dtype)], axis=1).reshape(-1, 4)
        assert np.all(np.sum(rows == 0, axis=1) >= 2), a.shape
    _close_to_float(env, path, atol=0.1, rtol=0.5)


def test_qat_int8_inside_float_io_close_to_float(env):
    from pilotopt.techniques._tflite import describe_tensors

    v, path = _variant(env, "tf_qat")
    t = describe_tensors(path.read_bytes())
    assert t["input_dtype"] == t["output_dtype"] == "float32"  # float I/O is fine
    assert t["weight_tensor_dtypes"].get("int8", 0) >= 6  # every conv/dense kernel int8
    assert t["activation_tensor_dtypes"].get("int8", 0) >= 5  # int8 activations inside
    assert "QUANTIZE" in t["operators"] and "DEQUANTIZE" in t["operators"]
    assert v.record["annotation"]
    _close_to_float(env, path, atol=0.1, rtol=0.3)


def test_cluster_at_most_16_values_per_kernel(env):
    v, path = _variant(env, "tf_cluster")
    per_layer = v.record["unique_values_per_layer"]
    assert len(per_layer) == 8 and not v.record["skipped_layers"]  # every kernel has >= 16 weights
    assert max(per_layer.values()) <= 16
    # re-read from the .tflite: every float kernel (2-D dense, 4-D conv) has <= 16 distinct values
    kernels = [a for dt, a in _constant_tensors(path).values() if dt == np.float32 and a.ndim in (2, 4)]
    assert len(kernels) >= 8
    for a in kernels:
        assert np.unique(a).size <= 16, a.shape
    _close_to_float(env, path, atol=0.1, rtol=0.5)


def test_cluster_skips_layers_with_fewer_weights_than_clusters(env):
    # 64 clusters: the output kernel (20 x 2 = 40 weights) must be skipped, not crash k-means++
    (v,) = optimize(env["model"], ["tf_cluster"], [env["data"]], env["root"] / "skip", cache_dir=env["cache"],
                    test_circuits=("simple",),
                    settings={"tf_cluster": {**SETTINGS["tf_cluster"], "number_of_clusters": 64,
                                             "max_train_frames": 32}})
    assert v.status == "ok", v.reason
    assert [s["layer"] for s in v.record["skipped_layers"]] == ["output"]
    assert "output" not in v.record["clustered_layers"] and len(v.record["clustered_layers"]) == 7
    assert max(v.record["unique_values_per_layer"].values()) <= 64
