"""ExecuTorch on XNNPACK: the PyTorch int8 that runs int8 kernels. torch_static and torch_qat lower
their PT2E graph to a .pte by default; executorch_fp32 is their fp32 parent in the same runtime."""

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
    variants = optimize(model, ["executorch_fp32", "torch_static", "torch_qat"], [tiny_data], root / "artifacts",
                        cache_dir=root / "cache", test_circuits=("simple",),
                        settings={"torch_static": {"calibration_frames": 16},
                                  "torch_qat": {"epochs": 1, "max_train_frames": 32, "batch_size": 16}})
    return {"root": root, "model": model, "data": tiny_data, "variants": {v.name: v for v in variants}}


def test_both_lower_to_xnnpack_and_detect_as_executorch(lowered):
    from pilotopt.artifacts import detect_kind, open_artifact

    for name in ("executorch_fp32", "torch_static", "torch_qat"):
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
    v32, v8 = lowered["variants"]["executorch_fp32"], lowered["variants"]["torch_static"]
    assert v8.record["precision"] == "int8" and v8.record["calibration_frames"] == 16
    assert v8.record["backend"] == "executorch" and v8.record["quantizer"].startswith("XNNPACKQuantizer")
    assert len(v8.record["int8_weight_layers"]) == 8  # 5 convs + 3 dense carry int8 weights
    assert v8.record["size_bytes"] < 0.4 * v32.record["size_bytes"]  # int8 weights: about a quarter
    from pilotopt.data import DataConfig, load_splits

    split = load_splits(DataConfig(roots=[lowered["data"]], test_circuits=("simple",),
                                   cache_dir=lowered["root"] / "cache")).test
    frames, _ = split.batch(np.arange(3))  # the frames a drive feeds, not noise
    ref = load_predictor(lowered["model"], threads=1).predict(frames)
    y32 = load_predictor(root / "executorch_fp32" / v32.artifact, threads=1).predict(frames)
    y8 = load_predictor(root / "torch_static" / v8.artifact, threads=1).predict(frames)
    assert y32.shape == y8.shape == (3, 2)  # batch 3 through a batch-1 program
    assert np.max(np.abs(y32 - ref)) < 1e-4
    assert 0 < np.max(np.abs(y8 - ref)) < 0.05  # quantized: not identical, still close


def test_qat_lowers_to_int8_kernels_too(lowered):
    v = lowered["variants"]["torch_qat"]
    assert v.runtime == "executorch" and v.record["backend"] == "executorch"
    assert v.record["fake_quant_calls_during_training"] > 0 and v.record["fake_quant_effect_max_abs"] > 0


def test_running_a_program_does_not_import_the_compiler(lowered):
    """A drive or evaluation worker loads the C++ bindings only: importing `executorch.exir` (what
    `portable_lib` does first) cost 6-7 core-seconds per process. The outputs are the program's."""
    import json
    import subprocess
    import sys

    from pilotopt.runtimes import load_predictor

    v = lowered["variants"]["executorch_fp32"]
    path = lowered["root"] / "artifacts" / "executorch_fp32" / v.artifact
    code = ("import json, sys, numpy as np; from pilotopt.runtimes import load_predictor; "
            f"p = load_predictor({str(path)!r}, threads=1); y = p.predict(np.full((2, 66, 200, 3), 90, np.uint8)); "
            "print(json.dumps({'exir': 'executorch.exir' in sys.modules, 'y': y.tolist()}))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["exir"] is False
    here = load_predictor(path, threads=1).predict(np.full((2, 66, 200, 3), 90, np.uint8))
    assert np.allclose(got["y"], here, atol=1e-6)
