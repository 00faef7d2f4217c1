"""TF-MOT collaborative optimization (tf_pqat, tf_cqat, tf_pcqat): each test checks, in the int8
kernels read back from the .tflite, the property the earlier stage put there (zeros, few values)."""

from __future__ import annotations

import numpy as np
import pytest

from pilotopt.techniques import optimize
from test_techniques_tfmot import _close_to_float, _constant_tensors, env  # noqa: F401

FAST = {"epochs": 1, "qat_epochs": 1, "batch_size": 32, "max_train_frames": 128, "calibration_frames": 32}


def _variant(env, name, **extra):  # noqa: F811
    (v,) = optimize(env["model"], [name], [env["data"]], env["out"], cache_dir=env["cache"],
                    test_circuits=("simple",), settings={name: {**FAST, **extra}})
    assert v.status == "ok", (name, v.reason)
    return v, env["out"] / name / v.artifact


def _int8_kernels(path):
    ks = [a for dt, a in _constant_tensors(path).values() if dt == np.int8 and a.ndim in (2, 4)]
    assert len(ks) >= 6
    return ks


def _max_unique_per_channel(a):
    rows = a.reshape(a.shape[0], -1)  # LiteRT: output channels first
    return max(np.unique(r).size for r in rows)


def test_pqat_int8_kernels_keep_zeros(env):  # noqa: F811
    v, path = _variant(env, "tf_pqat")
    assert min(v.record["sparsity_after_prune"].values()) >= 0.49
    for a in _int8_kernels(path):
        assert np.mean(a == 0) >= 0.45, (a.shape, float(np.mean(a == 0)))
    _close_to_float(env, path, atol=0.1, rtol=0.5)


def test_cqat_int8_kernels_few_values_per_channel(env):  # noqa: F811
    v, path = _variant(env, "tf_cqat")
    assert v.record["cluster_per_channel"] and not v.record["skipped_layers"]
    assert v.record["per_channel_layers"] == ["conv1", "conv2", "conv3", "conv4", "conv5"]
    assert max(v.record["unique_values_per_layer"].values()) <= 8 * 32  # 8 per channel (float stage)
    for a in _int8_kernels(path):
        assert _max_unique_per_channel(a) <= 8, a.shape
    _close_to_float(env, path, atol=0.1, rtol=0.5)


def test_pcqat_int8_kernels_keep_zeros_and_few_values(env):  # noqa: F811
    # cluster_epochs sets the cluster stage apart from the prune stage (the quick profile shortens it)
    v, path = _variant(env, "tf_pcqat", cluster_epochs=2)
    assert v.record["cluster_fine_tune"]["fine_tune_steps"] == 2 * v.record["prune_fine_tune"]["fine_tune_steps"]
    for a in _int8_kernels(path):
        assert np.mean(a == 0) >= 0.45, (a.shape, float(np.mean(a == 0)))
        # per-tensor clusters, but int8 conv scales are per channel: count per output channel
        assert _max_unique_per_channel(a) <= 8, a.shape  # 8 centroids, the preserved zero among them
    assert max(v.record["unique_values_per_layer"].values()) <= 8
    _close_to_float(env, path, atol=0.1, rtol=0.5)
