"""PyTorch quantization and pruning techniques (torchao PT2E, torch.nn.utils.prune): each test checks
the property that defines the technique, re-read from the artifact where it can be, on a tiny student
checkpoint fine-tuned briefly on a tiny generated data set, and that outputs stay near the baseline."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from _fixtures import sha256, torch_checkpoint

from pilotopt.errors import BadInputError
from pilotopt.techniques import optimize

FAST = {"epochs": 1, "batch_size": 32, "max_train_frames": 128}
SETTINGS = {
    "torch_dynamic": {},
    # the reference .pt2 program: its int8 weights and graph are read back here (the default
    # executorch backend lowers the same PT2E graph to XNNPACK: tests/test_executorch.py)
    "torch_static": {"calibration_frames": 32, "batch_size": 16, "backend": "pt2"},
    "torch_qat": {**FAST, "backend": "pt2"},
    "torch_prune_local": dict(FAST),
    "torch_prune_global": dict(FAST),
    "torch_prune_quant": {**FAST, "backend": "pt2"},  # a chain: torch_prune_local > torch_qat, each step gets these keys
}
# at 1e-4 a few steps move a zeroed weight less than half an int8 step, so the zeros would survive
# conversion even without the mask; at 1e-3 they do not: this run shows the mask is what keeps them
PRUNE_QUANT_HIGH_LR = {**SETTINGS["torch_prune_quant"], "learning_rate": 1e-3}
# the student's weight shapes: 5 convs + 3 dense
CONVS = {"features.conv1": (12, 3, 5, 5), "features.conv2": (16, 12, 5, 5), "features.conv3": (24, 16, 5, 5),
         "features.conv4": (32, 24, 3, 3), "features.conv5": (32, 32, 3, 3)}
DENSE = {"head.dense1": (100, 576), "head.dense2": (20, 100), "head.output": (2, 20)}




@pytest.fixture(scope="module")
def env(tmp_path_factory, tiny_data):
    from pilotopt.data import DataConfig, load_splits

    root = tmp_path_factory.mktemp("torchquant")
    data = tiny_data
    model = root / "student.pt"
    torch_checkpoint(model, "pilotnet_student")
    sha = sha256(model)
    split = load_splits(DataConfig(roots=[data], test_circuits=("simple",), cache_dir=root / "cache")).train
    x, _ = split.batch(np.arange(min(16, len(split))))
    out = root / "artifacts"
    variants = optimize(model, list(SETTINGS), [data], out, cache_dir=root / "cache", test_circuits=("simple",),
                        settings=SETTINGS)
    (high_lr,) = optimize(model, ["torch_prune_quant"], [data], root / "high_lr", cache_dir=root / "cache",
                          test_circuits=("simple",), settings={"torch_prune_quant": PRUNE_QUANT_HIGH_LR})
    return {"root": root, "data": data, "model": model, "cache": root / "cache", "frames": x.astype(np.float32),
            "out": out, "sha": sha, "variants": {v.name: v for v in variants}, "high_lr": high_lr}


def _variant(env, name):
    v = env["variants"][name]
    assert v.status == "ok", (name, v.reason)
    assert v.record["baseline_sha256"] == env["sha"]
    return v, env["out"] / name / v.artifact


def _predict(path, runtime, x):
    from pilotopt.runtimes import load_predictor

    return load_predictor(path, runtime=runtime, threads=2).predict(x)


def _close_to_baseline(env, v, path, atol=0.05, rtol=0.2):
    ref = _predict(env["model"], "torch", env["frames"])
    got = _predict(path, v.runtime, env["frames"])
    assert got.dtype == np.float32 and got.shape == ref.shape == (len(env["frames"]), 2)
    err = float(np.max(np.abs(got - ref)))
    assert err < atol + rtol * float(np.max(np.abs(ref))), err
    assert np.isfinite(v.record["check_max_abs_diff"])
    return err


def _program(path):
    import torch
    import torch.ao.quantization.fx._decomposed  # noqa: F401 - registers the q/dq ops for loading

    return torch.export.load(str(path))


def _int8_tensors(program) -> list:
    """Every int8 weight-like tensor (2-D or more, not a (N, 1) zero-point column) the program stores,
    plain or inside a tensor subclass; read independently of the code under test."""
    import torch

    found = []
    for t in [*program.state_dict.values(), *program.constants.values()]:
        inner = [getattr(t, n) for n in t.__tensor_flatten__()[0]] if hasattr(t, "__tensor_flatten__") else [t]
        found += [i for i in inner if isinstance(i, torch.Tensor) and i.dtype == torch.int8
                  and i.dim() >= 2 and i.shape[1] > 1]
    return found


def _ops(program) -> set[str]:
    return {str(n.target) for n in program.graph.nodes if n.op == "call_function"}


def _checkpoint_weights(path) -> dict:
    import torch

    sd = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    return {k[: -len(".weight")]: v for k, v in sd.items() if k.endswith(".weight")}


def test_input_checkpoint_unchanged_and_all_ok(env):
    assert sha256(env["model"]) == env["sha"]
    assert {n: v.status for n, v in env["variants"].items()} == {n: "ok" for n in SETTINGS}


def test_dynamic_int8_linear_weights_and_on_the_fly_activations(env):
    v, path = _variant(env, "torch_dynamic")
    assert path.suffix == ".pt2" and v.runtime == "torch_export"
    program = _program(path)
    shapes = sorted(tuple(t.shape) for t in _int8_tensors(program))
    assert shapes == sorted(DENSE.values())  # every Linear weight stored int8; the convs stay fp32
    ops = _ops(program)
    assert any("choose_qparams" in o for o in ops)  # activation scale computed per call
    assert any("_int_mm" in o for o in ops)  # a real int8 x int8 matmul
    assert sorted(v.record["int8_weight_layers"]) == sorted(DENSE)
    _close_to_baseline(env, v, path)


def test_static_int8_weights_and_calibrated_activations(env):
    v, path = _variant(env, "torch_static")
    program = _program(path)
    shapes = sorted(tuple(t.shape) for t in _int8_tensors(program))
    assert shapes == sorted([*CONVS.values(), *DENSE.values()])  # every conv/dense weight int8
    assert not any("float32" in str(t.dtype) and tuple(t.shape) in CONVS.values()
                   for t in program.state_dict.values())  # the fp32 weights are not saved too
    ops = _ops(program)
    assert "quantized_decomposed.quantize_per_tensor.default" in ops  # activations with fixed ranges
    assert not any("choose_qparams" in o for o in ops)  # ... from calibration, not on the fly
    assert v.record["calibration_frames"] == 32 and v.record["observers"] > 8
    assert path.stat().st_size < env["model"].stat().st_size  # int8 weights, not int8 + fp32
    assert sorted(v.record["int8_weight_layers"]) == sorted([*CONVS, *DENSE])
    _close_to_baseline(env, v, path)
    # the dynamic batch survives quantization
    assert _predict(path, "torch_export", env["frames"][:3]).shape == (3, 2)


def test_static_artifact_loads_in_a_fresh_interpreter(env):
    """The runtime must register the quantized ops itself (no torchao import in the loading process)."""
    _, path = _variant(env, "torch_static")
    code = ("import sys, numpy as np; from pilotopt.runtimes import load_predictor; "
            f"p = load_predictor({str(path)!r}, runtime='torch_export', threads=1); "
            "print(p.predict(np.zeros((2, 66, 200, 3), np.float32)).shape)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "(2, 2)" in out.stdout


def test_qat_really_fake_quantizes_during_training(env):
    import torch
    from torchao.quantization.pt2e import FakeQuantizeBase
    from torchao.quantization.pt2e.quantize_pt2e import prepare_qat_pt2e
    from torchao.quantization.pt2e.quantizer.x86_inductor_quantizer import (
        X86InductorQuantizer, get_default_x86_inductor_quantization_config)

    from pilotopt.models import build_torch

    v, path = _variant(env, "torch_qat")
    r = v.record
    assert r["fake_quant_nodes"] > 0 and r["fake_quant_modules"] > 0 and r["fine_tune_steps"] >= 1
    # rebuild the QAT graph independently: the recorded modules are the ones prepare_qat_pt2e calls
    net = build_torch("pilotnet_student", seed=0).eval()
    ep = torch.export.export(net, (torch.zeros(2, 66, 200, 3),),
                             dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=4096)},))
    quantizer = X86InductorQuantizer().set_global(get_default_x86_inductor_quantization_config(is_qat=True))
    prepared = prepare_qat_pt2e(ep.module(), quantizer)
    expected = [str(n.target) for n in prepared.graph.nodes
                if n.op == "call_module" and isinstance(prepared.get_submodule(str(n.target)), FakeQuantizeBase)]
    assert len(expected) >= 16  # 8 weights + the activations
    assert r["fake_quant_node_targets"] == expected and r["fake_quant_nodes"] == len(expected)
    assert r["fake_quant_modules"] == len({id(prepared.get_submodule(n)) for n in expected})
    # every training forward went through every fake-quant node, enabled
    assert r["fake_quant_calls_during_training"] == r["fine_tune_steps"] * len(expected)
    assert r["fake_quant_effect_max_abs"] > 0  # fake-quant changed the outputs: it really quantized
    shapes = sorted(tuple(t.shape) for t in _int8_tensors(_program(path)))
    assert shapes == sorted([*CONVS.values(), *DENSE.values()])
    _close_to_baseline(env, v, path)


def test_prune_local_reaches_per_layer_sparsity(env):
    v, path = _variant(env, "torch_prune_local")
    assert path.suffix == ".pt" and v.runtime == "torch"
    weights = _checkpoint_weights(path)  # re-read from the checkpoint
    assert set(weights) == set(CONVS) | set(DENSE)
    for name, w in weights.items():
        target = 0.3 if name in CONVS else 0.5
        assert abs(float((w == 0).float().mean()) - target) < 0.01, name
        assert abs(v.record["sparsity_per_layer"][name] - target) < 0.01, name
    _close_to_baseline(env, v, path)


def test_prune_global_reaches_overall_sparsity(env):
    v, path = _variant(env, "torch_prune_global")
    weights = _checkpoint_weights(path)
    zeros = sum(int((w == 0).sum()) for w in weights.values())
    total = sum(w.numel() for w in weights.values())
    assert abs(zeros / total - 0.3) < 0.01
    assert abs(v.record["sparsity_overall"] - 0.3) < 0.01
    per_layer = [float((w == 0).float().mean()) for w in weights.values()]
    assert max(per_layer) - min(per_layer) > 0.05  # one global threshold, not 30 % in every layer
    _close_to_baseline(env, v, path)


def _int8_zeros_cover_pruned_share(v, path):
    from pilotopt.techniques._pt2e import int8_weights

    program = _program(path)
    shapes = sorted(tuple(t.shape) for t in _int8_tensors(program))
    assert shapes == sorted([*CONVS.values(), *DENSE.values()])
    by_layer = int8_weights(program)
    assert set(by_layer) == set(CONVS) | set(DENSE)
    for name, q in by_layer.items():
        assert tuple(q.shape) == (CONVS | DENSE)[name]
        target = 0.3 if name in CONVS else 0.5
        assert float((q == 0).float().mean()) >= target - 0.005, name  # the pruned share survived
        assert v.record["sparsity_per_layer"][name] >= target - 0.005  # carried from step 1
    assert v.steps == ["torch_prune_local", "torch_qat"]
    assert all(v.record["input_zeros_kept_in_int8_per_layer"].values())
    assert v.record["fake_quant_calls_during_training"] > 0


def test_prune_quant_keeps_the_zeros_in_int8(env):
    v, path = _variant(env, "torch_prune_quant")
    _int8_zeros_cover_pruned_share(v, path)
    _close_to_baseline(env, v, path, atol=0.1, rtol=0.5)


def test_prune_quant_keeps_the_zeros_when_qat_moves_weights_far(env):
    v = env["high_lr"]
    assert v.status == "ok", v.reason
    _int8_zeros_cover_pruned_share(v, env["root"] / "high_lr" / "torch_prune_quant" / v.artifact)


@pytest.mark.parametrize("name, bad", [("torch_prune_local", {"conv_amount": 1.5}),
                                       ("torch_prune_global", {"amount": -0.1}),
                                       ("torch_static", {"calibration_frames": 0}),
                                       ("torch_prune_quant", {"epochs": 0}),
                                       ("torch_qat", {"learning_rate": 0})])
def test_bad_settings_are_one_line_errors(env, name, bad):
    with pytest.raises(BadInputError) as err:
        optimize(env["model"], [name], [env["data"]], env["root"] / "bad", settings={name: bad})
    assert "\n" not in str(err.value) and next(iter(bad)) in str(err.value)
