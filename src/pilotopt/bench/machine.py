"""`pilotopt bench machine`: this CPU's sustained multiply-accumulate peaks, measured with the
runtimes' own GEMM kernels (large square matrix products on the threads the run uses), so a model's
latency can be read as a share of what the machine can do:

    fp32: ONNX Runtime MatMul (MLAS) and torch.mm (oneDNN / MKL): the faster is the peak
    int8: ONNX Runtime MatMulInteger (u8 x s8 -> s32, MLAS's VNNI / AVX2 kernels) and torch._int_mm

A model's achieved rate is MACs per prediction / batch-1 latency; at batch 1 a small CNN cannot
reach a large GEMM's rate, so the share says how much room is left, not a target of 100 %."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from pilotopt.frameworks import import_torch

MACHINE_SCHEMA = "pilotopt.bench.machine/1"
SIZE = 1024  # a square GEMM this large keeps every kernel in its steady state


def _rate(fn, macs: int, seconds: float) -> float:
    """Sustained GMAC/s of `fn` (best of three timed stretches after a warm-up)."""
    fn()
    best = float("inf")
    for _ in range(3):
        n, t0 = 0, time.perf_counter()
        while True:
            fn()
            n += 1
            took = time.perf_counter() - t0
            if took >= seconds / 3:
                break
        best = min(best, took / n)
    return macs / best / 1e9


def _ort_session(op: str, a_type, b_type, n: int, threads: int, folder: Path):
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    out_type = TensorProto.INT32 if op == "MatMulInteger" else TensorProto.FLOAT
    graph = helper.make_graph([helper.make_node(op, ["a", "b"], ["y"])], "gemm",
                              [helper.make_tensor_value_info("a", a_type, [n, n]),
                               helper.make_tensor_value_info("b", b_type, [n, n])],
                              [helper.make_tensor_value_info("y", out_type, [n, n])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = folder / f"{op}.onnx"
    onnx.save(model, str(path))
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def measure_peaks(threads: int = 2, seconds: float = 3.0, size: int = SIZE) -> dict:
    """{"fp32_gmacs", "int8_gmacs", "kernels": {kernel: GMAC/s}, ...} on `threads` threads."""
    from onnx import TensorProto

    macs = size ** 3
    rng = np.random.default_rng(0)
    kernels: dict[str, float] = {}
    errors: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="pilotopt-machine-") as tmp:
        a32 = rng.standard_normal((size, size), dtype=np.float32)
        b32 = rng.standard_normal((size, size), dtype=np.float32)
        au8 = rng.integers(0, 256, (size, size), dtype=np.uint8)
        bs8 = rng.integers(-128, 128, (size, size), dtype=np.int8)
        try:
            s = _ort_session("MatMul", TensorProto.FLOAT, TensorProto.FLOAT, size, threads, Path(tmp))
            kernels["onnxruntime MatMul fp32"] = _rate(lambda: s.run(None, {"a": a32, "b": b32}), macs, seconds)
            s8 = _ort_session("MatMulInteger", TensorProto.UINT8, TensorProto.INT8, size, threads, Path(tmp))
            kernels["onnxruntime MatMulInteger u8s8"] = _rate(lambda: s8.run(None, {"a": au8, "b": bs8}), macs, seconds)
        except Exception as exc:  # noqa: BLE001 - one missing runtime leaves the other's figure
            errors["onnxruntime"] = str(exc).splitlines()[0][:200]
        try:
            torch = import_torch(threads)
            ta, tb = torch.from_numpy(a32), torch.from_numpy(b32)
            kernels["torch.mm fp32"] = _rate(lambda: torch.mm(ta, tb), macs, seconds)
            if hasattr(torch, "_int_mm"):
                ia = torch.from_numpy(au8.astype(np.int8))
                ib = torch.from_numpy(bs8)
                kernels["torch._int_mm s8s8"] = _rate(lambda: torch._int_mm(ia, ib), macs, seconds)
        except Exception as exc:  # noqa: BLE001
            errors["torch"] = str(exc).splitlines()[0][:200]
    fp32 = [v for k, v in kernels.items() if "fp32" in k]
    int8 = [v for k, v in kernels.items() if "fp32" not in k]
    return {"schema": MACHINE_SCHEMA, "threads": threads, "gemm_size": size,
            "fp32_gmacs": max(fp32) if fp32 else None, "int8_gmacs": max(int8) if int8 else None,
            "kernels": kernels, "errors": errors,
            "note": "sustained GMAC/s of a square GEMM; the peak per precision is the fastest kernel"}
