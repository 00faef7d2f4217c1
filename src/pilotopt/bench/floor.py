"""Each runtime's fixed cost of one batch-1 call: the latency of the smallest model with PilotNet's
input and output (the colour of one pixel through a dense layer 3 -> 2: 6 MACs, so what is left is
the call itself and the copy of the input), run through pilotopt's own predictor, as every
evaluation runs a variant. At batch 1 no chain, however few MACs it leaves, gets below its
runtime's floor: a variant's latency minus the floor is what its MACs cost. (The first floor model,
flatten + dense 39,600 -> 2, streamed 317 KB of weights per call: on an AVX2 EPYC its LiteRT
"floor" was 0.080 ms, above a 1.6 M MAC student's 0.050 ms.)"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

from pilotopt.frameworks import import_tf, import_torch
from pilotopt.runtimes import load_predictor
from pilotopt.techniques._tflite import convert_keras

SHAPE = (66, 200, 3)
CHANNELS = SHAPE[2]
WEIGHTS = np.array([[0.01, -0.02], [0.03, 0.01], [-0.01, 0.02]], np.float32)  # (3, 2): any small values


def _onnx(folder: Path) -> tuple[Path, str]:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(WEIGHTS, "w")
    b = numpy_helper.from_array(np.zeros(2, np.float32), "b")
    consts = [numpy_helper.from_array(np.array(v, np.int64), n) for n, v in
              (("starts", [0, 0]), ("ends", [1, 1]), ("axes", [1, 2]), ("shape", [-1, CHANNELS]))]
    graph = helper.make_graph([helper.make_node("Slice", ["x", "starts", "ends", "axes"], ["p"]),
                               helper.make_node("Reshape", ["p", "shape"], ["c"]),
                               helper.make_node("Gemm", ["c", "w", "b"], ["y"])], "floor",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *SHAPE])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2])], [w, b, *consts])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = folder / "floor.onnx"
    onnx.save(model, str(path))
    return path, "onnxruntime"


def _openvino(folder: Path) -> tuple[Path, str]:
    import openvino as ov

    src, _ = _onnx(folder)
    path = folder / "floor.xml"
    ov.save_model(ov.convert_model(str(src)), str(path), compress_to_fp16=False)
    return path, "openvino"


def _torch_module():
    torch = import_torch()

    class OnePixel(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.dense = torch.nn.Linear(CHANNELS, 2)

        def forward(self, x):
            return self.dense(x[:, 0, 0, :])

    net = OnePixel().eval()
    with torch.no_grad():
        net.dense.weight.copy_(torch.from_numpy(WEIGHTS.T.copy()))
        net.dense.bias.zero_()
    return torch, net, torch.zeros((1, *SHAPE))


def _torchscript(folder: Path) -> tuple[Path, str]:
    torch, net, x = _torch_module()
    path = folder / "floor_ts.pt"
    with torch.no_grad():
        torch.jit.trace(net, x).save(str(path))
    return path, "torchscript"


def _executorch(folder: Path) -> tuple[Path, str]:
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    torch, net, x = _torch_module()
    with torch.no_grad():
        edge = to_edge_transform_and_lower(torch.export.export(net, (x,)), partitioner=[XnnpackPartitioner()])
    path = folder / "floor.pte"
    path.write_bytes(edge.to_executorch().buffer)
    return path, "executorch"


def _litert(folder: Path) -> tuple[Path, str]:
    tf = import_tf()
    model = tf.keras.Sequential([tf.keras.layers.Input(SHAPE),
                                 tf.keras.layers.Cropping2D(((0, SHAPE[0] - 1), (0, SHAPE[1] - 1))),
                                 tf.keras.layers.Flatten(), tf.keras.layers.Dense(2)])
    model.layers[-1].set_weights([WEIGHTS, np.zeros(2, np.float32)])
    path = folder / "floor.tflite"
    path.write_bytes(convert_keras(model))
    return path, "litert"


BUILDERS: dict[str, Callable[[Path], tuple[Path, str]]] = {
    "onnxruntime": _onnx, "openvino": _openvino, "litert": _litert, "executorch": _executorch,
    "torchscript": _torchscript}


def _p50_ms(predict, x, seconds: float) -> tuple[float, int]:
    for _ in range(20):
        predict(x)
    times = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end or len(times) < 50:
        t0 = time.perf_counter()
        predict(x)
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1e3), len(times)


def measure_call_floors(threads: int = 2, seconds: float = 0.5, runtimes: list[str] | None = None) -> dict:
    """{"floors_ms": {runtime: p50 ms}, "calls": {runtime: n}, "errors": {runtime: why}}."""
    x = np.zeros((1, *SHAPE), np.float32)
    floors, calls, errors = {}, {}, {}
    with tempfile.TemporaryDirectory(prefix="pilotopt-floor-") as tmp:
        for name in runtimes or list(BUILDERS):
            try:
                path, runtime = BUILDERS[name](Path(tmp))
                predictor = load_predictor(path, runtime=runtime, threads=threads)
                floors[name], calls[name] = _p50_ms(predictor.predict, x, seconds)
            except Exception as exc:  # noqa: BLE001 - a runtime missing here leaves the others' figures
                errors[name] = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
    return {"floors_ms": floors, "calls": calls, "errors": errors, "threads": threads, "macs": int(WEIGHTS.size),
            "note": "p50 of one batch-1 predict() of a one pixel + dense(3 -> 2) model: the runtime's fixed "
                    "per-call cost"}
