"""ONNX model (any layout; NCHW exports from PyTorch included)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pilotopt.artifacts.kind import Kind, head, register_kind
from pilotopt.artifacts.tally import Tally


def detect(path: Path) -> bool:
    if not path.is_file() or head(path, 1) != b"\x08":  # protobuf field 1 (ir_version), varint
        return False
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception:  # noqa: BLE001 - not a protobuf ModelProto
        return False
    return model.ir_version > 0 and len(model.graph.node) > 0


def count(path: Path) -> dict | None:
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path), load_external_data=True)
    tally = Tally()
    dequantized = {}  # DequantizeLinear(x, scale[, zero_point]): x is a weight, zero at its zero point
    for node in model.graph.node:
        if node.op_type == "DequantizeLinear":
            axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
            dequantized[node.input[0]] = (node.input[2] if len(node.input) >= 3 else "", axis)
    inits = {init.name: init for init in model.graph.initializer}
    for name, init in inits.items():
        arr = numpy_helper.to_array(init)
        zp, axis = None, None
        if name in dequantized:
            zp_name, axis = dequantized[name]
            zp = numpy_helper.to_array(inits[zp_name]) if zp_name in inits else np.zeros(1, arr.dtype)
        tally.add(arr, zero_point=zp, axis=axis)
    return tally.result("ONNX initializers")


def declared_input(path: Path) -> tuple | None:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    inits = {i.name for i in model.graph.initializer}
    for inp in model.graph.input:
        if inp.name in inits:
            continue
        dims = inp.type.tensor_type.shape.dim
        return tuple(d.dim_value if d.HasField("dim_value") else None for d in dims[1:])
    return None


register_kind(Kind("onnx", "portable", "onnxruntime", "ONNX model", detect, count, declared_input, order=20))
