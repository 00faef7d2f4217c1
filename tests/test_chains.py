"""Technique chains: `a>b` and YAML variants compose passes over artifacts; kinds are checked before
any work; every chain prefix is cached, so a prefix shared by several chains runs once."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys

import pytest
from _fixtures import torch_checkpoint

from pilotopt.errors import BadInputError
from pilotopt.techniques import optimize, register_technique, techniques, unregister_technique
from pilotopt.techniques._chain import build_chain, plan_chains, split_spec

FAST = {"torch_prune_global": {"epochs": 1, "max_train_frames": 64, "batch_size": 32}}


# a test-only last step (the chain's child process imports this module to find it)
@register_technique("test_chain_segfault", framework="torch", runtime="torch", accepts=("torch_checkpoint",),
                    description="test only: SIGSEGV")
def _segfault(ctx):
    os.kill(os.getpid(), signal.SIGSEGV)


@pytest.fixture(scope="module", autouse=True)
def _cleanup_registry():
    yield
    unregister_technique("test_chain_segfault")


@pytest.fixture(scope="module")
def chained(tmp_path_factory, tiny_data):
    """Two chains sharing the prefix torch_prune_global, then the prefix alone, on a tiny student."""
    root = tmp_path_factory.mktemp("chains")
    model = torch_checkpoint(root / "student.pt", "pilotnet_student")
    out = root / "artifacts"
    first = optimize(model, ["torch_prune_global>onnx_fp32", "torch_prune_global+openvino_fp32"], [tiny_data], out,
                     cache_dir=root / "cache", test_circuits=("simple",), settings=FAST)
    steps_dir = out / ".steps"
    stamps = {p.name: (p / "variant.json").stat().st_mtime_ns for p in steps_dir.iterdir()}
    alone = optimize(model, ["torch_prune_global"], [tiny_data], out, cache_dir=root / "cache",
                     test_circuits=("simple",), settings=FAST)
    return {"root": root, "model": model, "out": out, "data": tiny_data, "first": first, "alone": alone[0],
            "stamps": stamps}


def test_a_shared_prefix_runs_once(chained):
    a, b = chained["first"]
    assert (a.status, b.status) == ("ok", "ok"), (a.reason, b.reason)
    assert a.name == "torch_prune_global+onnx_fp32" and b.name == "torch_prune_global+openvino_fp32"
    assert a.steps == ["torch_prune_global", "onnx_fp32"] and a.runtime == "onnxruntime"
    assert b.runtime == "openvino"
    ra, rb = a.record["step_records"], b.record["step_records"]
    assert [r["technique"] for r in ra] == ["torch_prune_global", "onnx_fp32"]
    assert ra[0]["reused"] is False and rb[0]["reused"] is True  # the fine-tune ran for the first chain only
    assert ra[0]["folder"] == rb[0]["folder"] == a.parent == b.parent and a.parent.startswith(".steps/")
    assert len(chained["stamps"]) == 1  # one cached prefix, written once
    # the pruning step's details travel with the chain's record
    assert a.record["sparsity_overall"] >= 0.25 and a.record["settings"]["torch_prune_global"]["epochs"] == 1


def test_the_prefix_alone_is_taken_from_the_cache(chained):
    v = chained["alone"]
    assert v.status == "ok" and v.record.get("reused") is True
    assert v.steps == ["torch_prune_global"] and (chained["out"] / "torch_prune_global" / v.artifact).is_file()
    now = {p.name: (p / "variant.json").stat().st_mtime_ns for p in (chained["out"] / ".steps").iterdir()}
    assert now == chained["stamps"]


def test_a_prefix_done_in_another_folder_is_reused_from_there(chained):
    """`reuse_from`: a search writing to its own folder takes the run's finished fine-tunes."""
    elsewhere = chained["root"] / "search_variants"
    (v,) = optimize(chained["model"], ["torch_prune_global>onnx_fp32"], [chained["data"]], elsewhere,
                    cache_dir=chained["root"] / "cache", test_circuits=("simple",), settings=FAST,
                    reuse_from=[chained["out"]])
    assert v.status == "ok", v.reason
    assert v.record.get("reused") is True or v.record["step_records"][0]["reused"] is True
    assert not (elsewhere / ".steps").exists()  # nothing was fine-tuned again here
    assert (elsewhere / v.name / v.artifact).is_file()


def test_other_settings_for_the_prefix_make_a_new_prefix(chained):
    other = {"torch_prune_global": {**FAST["torch_prune_global"], "amount": 0.5}}
    (v,) = optimize(chained["model"], ["torch_prune_global>onnx_fp32"], [chained["data"]], chained["root"] / "o2",
                    cache_dir=chained["root"] / "cache", test_circuits=("simple",), settings=other)
    assert v.status == "ok" and v.record["step_records"][0]["reused"] is False
    assert v.record["sparsity_overall"] >= 0.45


def test_a_crash_in_a_later_step_keeps_the_steps_done_before_it(chained):
    other = {"torch_prune_global": {**FAST["torch_prune_global"], "amount": 0.4}}
    out = chained["root"] / "crash"
    (v,) = optimize(chained["model"], ["torch_prune_global>test_chain_segfault"], [chained["data"]], out,
                    cache_dir=chained["root"] / "cache", test_circuits=("simple",), settings=other)
    assert v.status == "failed" and "step 2/2 test_chain_segfault" in v.reason and "SIGSEGV" in v.reason
    # both steps ran in one process; the pruning step it finished first is kept, and reused
    (again,) = optimize(chained["model"], ["torch_prune_global>onnx_fp32"], [chained["data"]], out,
                        cache_dir=chained["root"] / "cache", test_circuits=("simple",), settings=other)
    assert again.status == "ok" and again.record["step_records"][0]["reused"] is True


def test_yaml_variants_name_the_chain_and_set_its_steps(chained, tmp_path):
    cfg = tmp_path / "chains.yaml"
    cfg.write_text("settings:\n  torch_prune_global: {epochs: 1, max_train_frames: 64, batch_size: 32}\n"
                   "variants:\n  pruned_onnx:\n    steps: [torch_prune_global, onnx_fp32]\n")
    (v,) = optimize(chained["model"], [], [chained["data"]], chained["out"], config_file=cfg,
                    cache_dir=chained["root"] / "cache", test_circuits=("simple",))
    assert v.name == "pruned_onnx" and v.status == "ok"
    assert v.record["step_records"][0]["reused"] is True  # the same prefix as the chains above
    assert json.loads((chained["out"] / "pruned_onnx" / "variant.json").read_text())["steps"] == \
        ["torch_prune_global", "onnx_fp32"]


@pytest.mark.parametrize("spec, fragments", [
    ("tf_prune>torch_static", ["'torch_static' cannot take what 'tf_prune' produces", "keras_h5"]),
    ("onnx_fp32>torch_static", ["'torch_static' cannot take what 'onnx_fp32' produces", "onnx"]),
    ("torch_prune_global>no_such_thing", ["unknown technique(s) no_such_thing"]),
    ("torch_prune_global>>onnx_fp32", ["empty step"]),
])
def test_a_kind_mismatch_is_one_line_before_any_work(chained, tmp_path, spec, fragments):
    out = tmp_path / "never"
    with pytest.raises(BadInputError) as err:
        optimize(chained["model"], [spec], [chained["data"]], out, cache_dir=chained["root"] / "cache")
    msg = str(err.value)
    assert "\n" not in msg and all(f in msg for f in fragments), msg
    assert not out.exists()  # nothing was run or written


def test_the_cli_reports_a_mismatch_in_one_line(chained, tmp_path):
    env = dict(os.environ, COLUMNS="120")
    proc = subprocess.run([sys.executable, "-m", "pilotopt", "optimize", "--model", str(chained["model"]),
                           "--techniques", "tf_prune>torch_static", "--out", str(tmp_path / "o")],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "cannot take what" in proc.stderr


def test_an_unambiguous_conversion_is_inserted_and_named():
    known = dict(techniques())
    onnx_only = dataclasses.replace(known["onnx_int8_static"], name="needs_onnx", accepts=("onnx",))
    known["needs_onnx"] = onnx_only
    chain = build_chain(["torch_prune_global", "needs_onnx"], known)
    assert chain.names == ["torch_prune_global", "onnx_fp32", "needs_onnx"]
    assert chain.name == "torch_prune_global+onnx_fp32+needs_onnx" and chain.steps[1].inserted
    two_ways = dataclasses.replace(onnx_only, name="needs_portable", accepts=("onnx", "openvino"))
    known["needs_portable"] = two_ways
    with pytest.raises(BadInputError, match="insert one of onnx_fp32, openvino_fp32 between them"):
        build_chain(["torch_prune_global", "needs_portable"], known)


def test_a_pytorch_pass_reaches_litert_through_its_keras_twin():
    known = techniques()
    chain = build_chain(["torch_distill", "tflite_int8"], known)
    assert chain.names == ["torch_distill", "torch_to_keras", "tflite_int8"] and chain.steps[1].inserted
    assert chain.name == "torch_distill+torch_to_keras+tflite_int8"
    alone = plan_chains(["torch_to_keras"], known)[0]  # alone it is the PyTorch model in LiteRT
    assert alone.names == ["torch_to_keras", "tflite_fp32"] and alone.name == "torch_to_keras"


def test_a_pruned_pytorch_model_runs_in_litert_with_the_same_outputs(chained, tmp_path):
    import numpy as np

    from pilotopt.runtimes import load_predictor

    (v,) = optimize(chained["model"], ["torch_prune_global>tflite_fp32"], [chained["data"]], chained["out"],
                    cache_dir=chained["root"] / "cache", test_circuits=("simple",), settings=FAST)
    assert v.status == "ok", v.reason
    assert v.steps == ["torch_prune_global", "torch_to_keras", "tflite_fp32"] and v.runtime == "litert"
    records = v.record["step_records"]
    assert records[0]["reused"] is True  # the pruned model the chains above made
    pruned = load_predictor(chained["out"] / records[0]["folder"] / "model.pt", runtime="torch")
    lite = load_predictor(chained["out"] / v.name / v.artifact, runtime="litert")
    x = np.random.default_rng(0).integers(0, 256, (4, 66, 200, 3)).astype(np.float32)
    want = pruned.predict(x)
    assert np.abs(want).max() > 1e-3
    np.testing.assert_allclose(lite.predict(x), want, atol=1e-4, rtol=0)


def test_registered_chains_expand_and_passes_get_their_finish():
    known = techniques()
    assert [c.names for c in plan_chains(["tf_prune", "tf_prune_dynamic_range", "torch_prune_quant"], known)] == [
        ["tf_prune", "tflite_fp32"], ["tf_prune", "tflite_dynamic_range"], ["torch_prune_local", "torch_qat"]]
    three = plan_chains(["tf_prune>tf_cluster>tflite_int8_fallback"], known)[0]
    assert three.names == ["tf_prune", "tf_cluster", "tflite_int8_fallback"]
    assert split_spec("a > b+c") == ["a", "b", "c"]


def test_torch_to_keras_names_an_architecture_without_a_keras_twin():
    from types import SimpleNamespace

    from pilotopt.techniques.torch_to_keras import keras_twin

    ctx = SimpleNamespace(torch_model_name="dls_pilotnet")  # DLS's PyTorch PilotNet: no Keras twin registered
    with pytest.raises(BadInputError) as err:
        keras_twin(ctx)
    msg = str(err.value)
    assert "\n" not in msg and "dls_pilotnet" in msg and "not registered" in msg
