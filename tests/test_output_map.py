"""Commands are applied as the model's output map gives them (the edge package's rule): a model
that asks for 3 m/s drives at 3 m/s, not at the labels' lower bound of 6.5; a contract clips only
when it says so; model options without a model are an error."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np


def _constant_onnx(path: Path, p_v: float, p_w: float) -> Path:
    """An ONNX model of pilotopt's contract whose normalized outputs are (p_v, p_w) for any frame."""
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 66, 200, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2])
    nodes = [helper.make_node("ReduceMean", ["x"], ["m"], axes=[1, 2], keepdims=0),  # (N, 3)
             helper.make_node("MatMul", ["m", "zero"], ["z"]),  # (N, 2) zeros that depend on the frame
             helper.make_node("Add", ["z", "const"], ["y"])]
    init = [helper.make_tensor("zero", TensorProto.FLOAT, [3, 2], [0.0] * 6),
            helper.make_tensor("const", TensorProto.FLOAT, [2], [p_v, p_w])]
    model = helper.make_model(helper.make_graph(nodes, "constant", [x], [y], init),
                              opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def _drive(*args):
    exe = Path(sys.executable).with_name("pilotopt")
    return subprocess.run([str(exe), "sim", "drive", *map(str, args)], capture_output=True, text=True, timeout=300)


def test_a_slow_command_drives_slowly(tmp_path):
    model = _constant_onnx(tmp_path / "slow.onnx", (3.0 - 6.5) / 17.5, 0.5)  # v = 3 m/s, w = 0
    r = _drive("--model", model, "--timeout", "4", "--json", tmp_path / "m.json")
    assert r.returncode == 0, r.stderr[-600:]
    m = json.loads((tmp_path / "m.json").read_text())["metrics"]
    assert abs(m["average_speed"] - 3.0) < 0.05, m["average_speed"]


def test_a_contract_clips_only_when_it_asks(tmp_path):
    from pilotopt.contracts import load_contract

    y = np.array([[-0.2, 1.3]], np.float32)
    v, w = load_contract(None).commands(y)
    assert np.isclose(v[0], 17.5 * -0.2 + 6.5) and np.isclose(w[0], 14.2 * 1.3 - 7.1)
    clipped = load_contract({"clip": {"v": [6.5, 24.0], "w": [-7.1, 7.1]}})
    v, w = clipped.commands(y)
    assert v[0] == 6.5 and w[0] == 7.1
    assert clipped.to_dict()["clip"] == {"v": [6.5, 24.0], "w": [-7.1, 7.1]}
    assert "clip" not in load_contract(None).to_dict()  # the digest of contracts without a clip is unchanged


def test_model_options_without_a_model_are_an_error(tmp_path):
    r = _drive("--brain", "classic", "--input", "dls-torch", "--timeout", "1")
    assert r.returncode == 2 and "--input describe a model" in r.stderr and "Traceback" not in r.stderr
