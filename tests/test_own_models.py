"""Models trained elsewhere, PyTorch and ONNX (tests/_dls_models.py builds them as DLS saves them):
each goes through optimize and evaluate with its preset, and its evaluated outputs equal the model
computed by hand with the preset's preprocessing; wrong presets, kinds and architectures are caught."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from _dls_models import TORCH_CASES, check_optimized_case, cli  # noqa: E402

from pilotopt.errors import BadInputError  # noqa: E402


OWN_CASES = TORCH_CASES  # what the `optimized` fixture (conftest.py) builds for this file


@pytest.mark.slow
@pytest.mark.parametrize("case", OWN_CASES)
def test_optimize_and_evaluate_with_the_preset(case, optimized, dls, tiny_data):
    check_optimized_case(case, optimized, dls, tiny_data)


@pytest.mark.slow
def test_channel_pruned_and_distilled_dls_models_stay_in_its_contract(optimized, tiny_data):
    """Both make a smaller model that takes the DLS model's own NCHW /255 input (a trace)."""
    v = optimized["state_dict"]["variants"]
    prune, distill = v["torch_channel_prune"].record, v["torch_distill"].record
    assert prune["macs_after"] < 0.5 * prune["macs_before"] and prune["params_after"] < prune["params_before"]
    assert distill["student_wrapped_in_contract"] and distill["student_macs"] < 0.5 * distill["teacher_macs"]
    for name in ("torch_channel_prune", "torch_distill"):
        assert v[name].runtime == "torchscript"
        traced = torch.jit.load(str(optimized["state_dict"]["work"] / "variants" / name / v[name].artifact))
        assert traced(torch.rand(2, 3, 66, 200)).shape == (2, 2)


def test_recurrent_dls_model_skips_channel_pruning_and_distillation(dls, tiny_data, tmp_path):
    from pilotopt.techniques import optimize

    vs = optimize(dls["root"] / "DLT_net_model_123.ckpt", "torch_channel_prune,torch_distill", [tiny_data], tmp_path,
                  arch="dls_deepest_lstm_tinypilotnet", contract="dls-torch", test_circuits=("simple",), threads=1)
    assert [v.status for v in vs] == ["skipped", "skipped"]
    assert "recurrent" in vs[0].reason and "100x50" in vs[1].reason


def test_wrong_preset_is_caught_or_visible(dls, tmp_path):
    from pilotopt.artifacts import open_artifact
    from pilotopt.runtimes import load_artifact_predictor
    from pilotopt.contracts import out_of_range_share

    # an NCHW state dict fed NHWC by the pilotopt preset: an error before any work
    with pytest.raises(BadInputError, match="declares input .*pass --input"):
        open_artifact(dls["root"] / "pilot_net_model_123.ckpt", arch="dls_pilotnet", contract="pilotopt")
    # a trace fed the wrong layout: one line naming the fix, no traceback
    r = cli("sim", "drive", "--model", str(dls["root"] / "baseline.pth"), "--circuit", "simple", "--timeout", "2")
    assert r.returncode == 2 and "Traceback" not in r.stderr and "--input" in r.stderr, r.stderr
    # a Keras model fed raw pixels instead of Normalize(): outputs leave [0, 1]
    art = open_artifact(dls["root"] / "20230101_pilotnet_model_no_crop.h5",
                        contract={"base": "dls-tf", "scaling": "raw"})
    images = np.random.default_rng(0).integers(0, 256, (16, 66, 200, 3)).astype(np.uint8)
    assert out_of_range_share(load_artifact_predictor(art).predict(images)) > 0.5
    right = open_artifact(dls["root"] / "20230101_pilotnet_model_no_crop.h5", contract="dls-tf")
    assert out_of_range_share(load_artifact_predictor(right).predict(images)) < 0.5
    shares = {}
    for name, preset in (("wrong", str(_yaml(tmp_path, "base: dls-tf\nscaling: raw\n"))), ("right", "dls-tf")):
        r = cli("sim", "drive", "--model", str(dls["root"] / "20230101_pilotnet_model_no_crop.h5"), "--circuit",
                 "simple", "--timeout", "2", "--input", preset, "--json", str(tmp_path / f"{name}.json"))
        assert r.returncode == 0 and "input contract" in r.stderr, r.stderr
        shares[name] = json.loads((tmp_path / f"{name}.json").read_text())["brain"]["outputs_out_of_range_share"]
    assert shares["wrong"] > shares["right"]  # recorded with every drive


def test_out_of_range_warning(capsys):
    from pilotopt.cli.model_options import warn_out_of_range

    warn_out_of_range(0.9, "dls-tf")
    err = capsys.readouterr().err
    assert "warning: 90%" in err and "pass --input" in err
    warn_out_of_range(0.1, "dls-tf")
    assert capsys.readouterr().err == ""


def _yaml(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "contract.yaml"
    p.write_text(text)
    return p


def test_state_dict_needs_an_arch_and_the_right_one(dls):
    from pilotopt.runtimes import load_predictor

    with pytest.raises(BadInputError, match="--arch"):
        load_predictor(dls["root"] / "pilot_net_model_123.ckpt")
    with pytest.raises(BadInputError, match="do not fit architecture 'pilotnet'"):
        load_predictor(dls["root"] / "pilot_net_model_123.ckpt", arch="pilotnet")


def test_kinds_are_detected_by_content_not_name(dls, tmp_path):
    import shutil

    from pilotopt.artifacts import detect_kind

    root = dls["root"]
    expect = {"pilot_net_model_123.ckpt": "torch_state_dict", "baseline.pth": "torchscript",
              "pilotnet_nchw.onnx": "onnx", "20230101_pilotnet_model_no_crop.h5": "keras_h5",
              "pilotnet_savedmodel": "saved_model"}
    for name, kind in expect.items():
        assert detect_kind(root / name).name == kind
        renamed = tmp_path / f"renamed_{kind}"  # no telling suffix
        (shutil.copytree if (root / name).is_dir() else shutil.copy2)(root / name, renamed)
        assert detect_kind(renamed).name == kind, name
