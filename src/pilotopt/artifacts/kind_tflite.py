"""LiteRT (TFLite) flatbuffer: file identifier "TFL3" at bytes 4..8."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pilotopt.artifacts.kind import Kind, head, register_kind
from pilotopt.artifacts.tally import Tally


def detect(path: Path) -> bool:
    return head(path, 8)[4:8] == b"TFL3"


def count(path: Path) -> dict | None:
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.interpreter import Interpreter

    buf = path.read_bytes()
    model = schema.Model.GetRootAs(buf, 0)
    constant = set()
    if model.SubgraphsLength():
        sub = model.Subgraphs(0)
        for i in range(sub.TensorsLength()):
            b = sub.Tensors(i).Buffer()
            if 0 < b < model.BuffersLength():
                buffer = model.Buffers(b)
                if buffer.DataLength() > 0 or buffer.Size() > 0:
                    constant.add(i)
    interp = Interpreter(model_path=str(path), num_threads=1)
    interp.allocate_tensors()
    tally = Tally()
    for d in interp.get_tensor_details():
        if d["index"] not in constant:
            continue
        try:
            arr = interp.get_tensor(d["index"])
        except ValueError:
            continue
        q = d.get("quantization_parameters") or {}
        scales = np.asarray(q.get("scales", []))
        zps = np.asarray(q.get("zero_points", []))
        if arr.dtype.kind in "iu" and scales.size == 0:
            continue  # shapes and indices
        tally.add(arr, zero_point=zps if scales.size else None, axis=q.get("quantized_dimension"))
    return tally.result("TFLite constant tensors")


def declared_input(path: Path) -> tuple | None:
    from ai_edge_litert.interpreter import Interpreter

    d = Interpreter(model_path=str(path), num_threads=1).get_input_details()[0]
    sig = d.get("shape_signature")
    shape = list(sig if sig is not None and len(sig) else d["shape"])
    return tuple(None if s < 0 else int(s) for s in shape[1:])


register_kind(Kind("tflite", "tf", "litert", "LiteRT / TFLite flatbuffer", detect, count, declared_input, order=20))
