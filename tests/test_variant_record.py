"""A variant's record travels with its artifact: the file or its folder, opened anywhere, is fed by
the contract and architecture its variant.json records; a bare file says what was assumed; a variant
that stopped computing its input model's function fails instead of passing as ok."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from _dls_models import EVAL, build_dls_models

from pilotopt.errors import BadInputError
from pilotopt.techniques import optimize, register_technique, unregister_technique


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pilotopt", *args], capture_output=True, text=True, timeout=600)


# -- test-only techniques (the child process imports this module to find them) ----------------------
def _edit_output_layer(ctx, weight_scale: float, bias) -> str:
    import torch

    from pilotopt.models import build_torch

    doc = torch.load(ctx.baseline.path, map_location="cpu", weights_only=True)
    net = build_torch(doc["model"])
    net.load_state_dict(doc["state_dict"])
    with torch.no_grad():
        net.head.output.weight.mul_(weight_scale)
        net.head.output.bias.copy_(torch.tensor(bias))
    return ctx.save_torch_checkpoint(net)


@register_technique("test_constant_output", framework="torch", runtime="torch", accepts=("torch_checkpoint",),
                    produces="torch_checkpoint", description="test only: answers one (v, w) to every frame")
def _constant(ctx):
    from pilotopt.techniques import Result

    return Result(_edit_output_layer(ctx, 0.0, [0.3, 0.4]))


@register_technique("test_shifted_output", framework="torch", runtime="torch", accepts=("torch_checkpoint",),
                    produces="torch_checkpoint", description="test only: outputs moved out of [0, 1]")
def _shifted(ctx):
    from pilotopt.techniques import Result

    return Result(_edit_output_layer(ctx, 1.0, [5.0, 5.0]))


@pytest.fixture(scope="module", autouse=True)
def _cleanup_registry():
    yield
    for name in ("test_constant_output", "test_shifted_output"):
        unregister_technique(name)


# -- the contract travels with the artifact ---------------------------------------------------------
@pytest.fixture(scope="module")
def dls_tflite(tmp_path_factory):
    """DLS's Keras PilotNet (dls-tf contract: Normalize(), a (200, 66, 3) declaration) made into a
    LiteRT variant; its variant.json records dls-tf."""
    root = tmp_path_factory.mktemp("record")
    (root / "dls").mkdir()
    dls = build_dls_models(root / "dls")
    (v,) = optimize(dls["root"] / "20230101_pilotnet_model_no_crop.h5", ["tflite_fp32"], None, root / "variants",
                    contract="dls-tf", threads=1)
    assert v.status == "ok", v.reason
    return {"root": root, "folder": root / "variants" / "tflite_fp32", "file": root / "variants" / "tflite_fp32" / v.artifact}


def test_the_record_feeds_the_artifact_file_and_its_folder(dls_tflite):
    from pilotopt.artifacts import open_artifact

    for path in (dls_tflite["file"], dls_tflite["folder"]):
        art = open_artifact(path)
        assert art.contract.name == "dls-tf" and art.path == dls_tflite["file"]
        assert any("recorded in" in n for n in art.contract.notes)
        assert open_artifact(path, contract="dls-tf").contract.digest == art.contract.digest
    # a bare copy of the same file has no record: pilotopt's own contract, and it says it assumed it
    bare = dls_tflite["root"] / "copy.tflite"
    bare.write_bytes(dls_tflite["file"].read_bytes())
    art = open_artifact(bare)
    assert art.contract.name.startswith("pilotopt") and any(n.startswith("assumed") or "assumed" in n
                                                            for n in art.contract.notes)


def test_input_contradicting_the_record_is_one_line(dls_tflite):
    from pilotopt.artifacts import open_artifact

    with pytest.raises(BadInputError, match=r"--input 'pilotopt' contradicts .*records input contract 'dls-tf'"):
        open_artifact(dls_tflite["file"], contract="pilotopt")
    r = cli("sim", "drive", "--model", str(dls_tflite["folder"]), "--input", "dls-torch", "--circuit", "simple",
            "--timeout", "1")
    assert r.returncode == 2 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "contradicts" in r.stderr and "dls-tf" in r.stderr and "dls-torch" in r.stderr
    r = cli("evaluate", "--artifacts", str(dls_tflite["file"]), "--input", "pilotopt", "--data", str(dls_tflite["root"]),
            "--out", str(dls_tflite["root"] / "eval"))
    assert r.returncode == 2 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "contradicts" in r.stderr


def test_evaluate_and_drive_use_the_record(dls_tflite, tiny_data, tmp_path):
    """File, folder and explicit --input give the same MSE and the same drive."""
    from pilotopt.evaluate.harness import evaluate_artifacts

    mse = {}
    for name, path, contract in (("file", dls_tflite["file"], None), ("folder", dls_tflite["folder"], None),
                                 ("input", dls_tflite["file"], "dls-tf")):
        doc = evaluate_artifacts(path, [tiny_data], tmp_path / name, cache_dir=tmp_path / "cache", contract=contract,
                                 **EVAL)
        (row,) = doc["variants"]
        assert row["status"] == "ok" and row["name"] == "tflite_fp32" and row["input_contract"] == "dls-tf"
        mse[name] = row["error"]["mse_mean"]
    assert mse["file"] == mse["folder"] == mse["input"]
    drives = {}
    for name, args in (("file", [str(dls_tflite["file"])]), ("folder", [str(dls_tflite["folder"])]),
                       ("input", [str(dls_tflite["file"]), "--input", "dls-tf"])):
        out = tmp_path / f"{name}.json"
        r = cli("sim", "drive", "--model", *args, "--circuit", "simple", "--timeout", "3", "--json", str(out))
        assert r.returncode == 0, r.stderr
        if name != "input":
            assert "recorded in" in r.stderr and "assumed" not in r.stderr, r.stderr
        drives[name] = json.loads(out.read_text())["metrics"]
    keys = ("completed_distance", "position_deviation_mae", "brain_steps")
    assert {k: drives["file"][k] for k in keys} == {k: drives["folder"][k] for k in keys} == \
        {k: drives["input"][k] for k in keys}


def test_a_bare_file_says_what_was_assumed_in_every_command(dls_tflite, tmp_path):
    bare = tmp_path / "model.tflite"
    bare.write_bytes(dls_tflite["file"].read_bytes())
    r = cli("sim", "drive", "--model", str(bare), "--circuit", "simple", "--timeout", "1")
    assert r.returncode == 0 and "input contract: assumed the default 'pilotopt' contract" in r.stderr, r.stderr


def test_a_layout_mismatch_names_both_layouts(dls_tflite):
    from pilotopt.artifacts import open_artifact

    h5 = dls_tflite["root"] / "dls" / "20230101_pilotnet_model_no_crop.h5"
    with pytest.raises(BadInputError) as err:
        open_artifact(h5, contract="dls-torch")
    text = str(err.value)
    assert "(N, 200, 66, 3) (NHWC)" in text and "(N, 3, 66, 200) (NCHW)" in text, text


# -- a variant must still compute its input model's function ----------------------------------------
@pytest.fixture(scope="module")
def in_range_student(tmp_path_factory):
    """A student whose outputs stay near 0.5 (in range) but vary with the frame."""
    import torch

    from pilotopt.models import build_torch

    root = tmp_path_factory.mktemp("fidelity")
    net = build_torch("pilotnet_student", seed=0)
    with torch.no_grad():
        net.head.output.weight.mul_(0.05)
        net.head.output.bias.copy_(torch.tensor([0.5, 0.5]))
    path = root / "student.pt"
    torch.save({"format": "pilotopt.torch/1", "model": "pilotnet_student", "state_dict": net.state_dict(), "meta": {}},
               path)
    return root, path


def test_a_variant_with_a_constant_output_fails(in_range_student):
    root, model = in_range_student
    (v,) = optimize(model, ["test_constant_output"], None, root / "const", threads=1)
    assert v.status == "failed" and "constant output v" in v.reason and "w (std" in v.reason, v.reason
    with pytest.raises(BadInputError, match="is failed: .*constant output"):
        from pilotopt.artifacts import open_artifact

        open_artifact(root / "const" / "test_constant_output")
    r = cli("sim", "drive", "--model", str(root / "const" / "test_constant_output"), "--circuit", "simple")
    assert r.returncode == 2 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "is failed" in r.stderr and "pick an ok variant" in r.stderr


def test_mse_ratio_fails_a_variant_that_lost_its_function():
    from pilotopt.techniques._fidelity import function_lost

    rng = np.random.default_rng(0)
    labels = rng.uniform(0, 1, (256, 2))
    parent = labels + rng.normal(0, 0.05, labels.shape)  # MSE about 0.0025
    close = labels + rng.normal(0, 0.07, labels.shape)  # about 2x: kept
    broken = labels + rng.normal(0, 0.2, labels.shape)  # about 16x: lost
    assert function_lost(close, parent, labels, 3.0).reason is None
    lost = function_lost(broken, parent, labels, 3.0)
    assert lost.reason and "limit 3x" in lost.reason and lost.record["check_max_mse_ratio"] == 3.0
    assert function_lost(broken, parent, labels, 50.0).reason is None  # the setting decides
    # an output the input model itself barely varies (a barely trained model) is not judged constant
    flat_parent = np.column_stack([parent[:, 0], 0.5 + rng.normal(0, 0.003, len(labels))])
    flat_got = np.column_stack([parent[:, 0], np.full(len(labels), 0.5)])
    assert function_lost(flat_got, flat_parent, labels, 1e3).reason is None
    # one flat output is the MSE limit's to judge; an answer that ignores the frame fails by itself
    assert function_lost(flat_got, parent, labels, 1e3).reason is None
    assert function_lost(flat_got, parent, labels, 3.0).reason.startswith("MSE ")
    frozen = np.tile([[0.3, 0.4]], (len(labels), 1))
    assert function_lost(frozen, parent, labels, 1e3).reason.startswith("constant output v (std ")
    noise = rng.uniform(0, 1, labels.shape)  # an untrained input model: no better than the labels' mean
    assert function_lost(frozen, noise, labels, 1e3).reason is None


def test_out_of_range_variant_is_called_broken_not_the_contract(in_range_student, tiny_data, tmp_path):
    root, model = in_range_student
    out = tmp_path / "variants"
    vs = optimize(model, ["torch", "test_shifted_output"], None, out, threads=1)
    assert [v.status for v in vs] == ["ok", "ok"], [v.reason for v in vs]  # no data: no labels to judge by
    r = cli("evaluate", "--artifacts", str(out), "--data", str(tiny_data), "--out", str(tmp_path / "eval"),
            "--test-circuits", "simple", "--threads", "1", "--min-calls", "5", "--min-seconds", "0.01",
            "--throughput-batch", "8")
    assert r.returncode == 0, r.stderr
    warning = [line for line in r.stderr.splitlines() if "test_shifted_output" in line and "warning" in line]
    assert warning and "the variant is broken" in warning[0] and "pass --input" not in warning[0], r.stderr
    assert "of torch's test predictions" not in r.stderr  # the in-range parent draws no warning
