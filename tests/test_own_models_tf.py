"""Models trained elsewhere, Keras (.h5 with an input BatchNorm, SavedModel; tests/_dls_models.py builds
them as DLS saves them) through optimize and evaluate with the dls-tf preset, and bare model files of
each framework through `pilotopt evaluate`."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")

from _dls_models import CASES, TF_CASES, check_optimized_case, cli  # noqa: E402


OWN_CASES = TF_CASES  # what the `optimized` fixture (conftest.py) builds for this file


@pytest.mark.slow
@pytest.mark.parametrize("case", OWN_CASES)
def test_optimize_and_evaluate_with_the_preset(case, optimized, dls, tiny_data):
    check_optimized_case(case, optimized, dls, tiny_data)


@pytest.mark.slow
def test_keras_model_is_redeclared_and_its_batchnorm_folded(optimized):
    v = optimized["keras_h5"]["variants"]
    assert v["tf_qat"].status == "ok"  # TF-MOT refuses BatchNormalization: folded into an exact Rescaling
    from ai_edge_litert.interpreter import Interpreter

    tflite = optimized["keras_h5"]["work"] / "variants" / "tflite_fp32" / v["tflite_fp32"].artifact
    assert tuple(Interpreter(model_path=str(tflite)).get_input_details()[0]["shape"][1:]) == (66, 200, 3)


@pytest.mark.slow
@pytest.mark.parametrize("case", ["state_dict", "keras_h5", "onnx"])
def test_evaluate_a_bare_model_file(case, dls, tiny_data, tmp_path):
    file, arch, preset, _ = CASES[case]
    args = ["evaluate", "--artifacts", str(dls["root"] / file), "--data", str(tiny_data), "--out", str(tmp_path / "e"),
            "--input", preset, "--test-circuits", "simple", "--threads", "1", "--min-calls", "5", "--min-seconds", "0.01",
            "--throughput-batch", "8"] + (["--arch", arch] if arch else [])
    r = cli(*args)
    assert r.returncode == 0, r.stdout + r.stderr
    doc = json.loads((tmp_path / "e" / "results.json").read_text())
    (row,) = doc["variants"]
    assert row["status"] == "ok" and row["input_contract"].startswith(preset)
