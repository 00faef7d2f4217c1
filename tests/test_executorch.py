"""ExecuTorch on XNNPACK: the PyTorch int8 path that runs int8 kernels (a .pte kind, runtime and two
techniques), read back from the artifact."""

from __future__ import annotations

import numpy as np
import pytest
from _fixtures import torch_checkpoint

from pilotopt.techniques import optimize

pytest.importorskip("executorch")


@pytest.fixture(scope="module")
def lowered(tmp_path_factory, tiny_data):
    root = tmp_path_factory.mktemp("executorch")
    model = torch_checkpoint(root / "student.pt", "pilotnet_student")
    variants = optimize(model, ["executorch_fp32", "executorch_int8"], [tiny_data], root / "artifacts",
                        cache_dir=root / "cache", test_circuits=("simple",),
                        settings={"executorch_int8": {"calibration_frames": 16}})
    return {"root": root, "model": model, "data": tiny_data, "variants": {v.name: v for v in variants}}


def test_both_lower_to_xnnpack_and_detect_as_executorch(lowered):
    from pilotopt.artifacts import detect_kind, open_artifact

    for name in ("executorch_fp32", "executorch_int8"):
        v = lowered["variants"][name]
        assert v.status == "ok", (name, v.reason)
        path = lowered["root"] / "artifacts" / name / v.artifact
        assert detect_kind(path).name == "executorch" and v.runtime == "executorch"
        assert v.record["delegate_calls"] >= 1
        # every convolution and dense layer went to XNNPACK: none is left outside the delegate
        assert not [op for op in v.record["ops_outside_delegate"] if "conv" in op or "linear" in op or "mm" in op]
        assert open_artifact(path).contract.geometry.height == 66


def test_int8_is_smaller_and_close_to_fp32(lowered):
    from pilotopt.runtimes import load_predictor

    root = lowered["root"] / "artifacts"
    v32, v8 = lowered["variants"]["executorch_fp32"], lowered["variants"]["executorch_int8"]
    assert v8.record["precision"] == "int8" and v8.record["calibration_frames"] == 16
    assert v8.record["size_bytes"] < 0.4 * v32.record["size_bytes"]  # int8 weights: about a quarter
    from pilotopt.data import DataConfig, load_splits

    split = load_splits(DataConfig(roots=[lowered["data"]], test_circuits=("simple",),
                                   cache_dir=lowered["root"] / "cache")).test
    frames, _ = split.batch(np.arange(3))  # the frames a drive feeds, not noise
    ref = load_predictor(lowered["model"], threads=1).predict(frames)
    y32 = load_predictor(root / "executorch_fp32" / v32.artifact, threads=1).predict(frames)
    y8 = load_predictor(root / "executorch_int8" / v8.artifact, threads=1).predict(frames)
    assert y32.shape == y8.shape == (3, 2)  # batch 3 through a batch-1 program
    assert np.max(np.abs(y32 - ref)) < 1e-4
    assert 0 < np.max(np.abs(y8 - ref)) < 0.05  # quantized: not identical, still close
