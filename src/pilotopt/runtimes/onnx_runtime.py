"""ONNX Runtime predictor for .onnx files: CPUExecutionProvider, sequential execution, a fixed
intra-op thread pool and one inter-op thread, all graph optimizations."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pilotopt.frameworks import require_package
from pilotopt.runtimes import register_runtime
from pilotopt.runtimes.base import CheckedPredictor, load_failed, require_file, sequence_length_of

_ONNX_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64,
               "tensor(uint8)": np.uint8, "tensor(int8)": np.int8}




def _dim(d) -> int | None:
    return int(d) if isinstance(d, int) and d > 0 else None


@register_runtime("onnxruntime")
class OnnxRuntimePredictor(CheckedPredictor):
    runtime = "onnxruntime"

    def __init__(self, path: Path, threads: int | None = None, **_):
        ort = require_package("onnxruntime")
        self.path = require_file(path, (".onnx",), "ONNX", "onnxruntime")
        self.threads = threads
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(threads or 0)  # 0 = ONNX Runtime's default
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3  # errors only
        try:
            self.session = ort.InferenceSession(str(self.path), sess_options=opts,
                                                providers=["CPUExecutionProvider"])
        except Exception as exc:  # InvalidProtobuf, Fail, NotImplemented (unknown op) ...
            raise load_failed("ONNX", self.path, exc) from None
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise load_failed("ONNX", self.path, ValueError(f"expected one input, found {len(inputs)}"))
        inp = inputs[0]
        self.input_name = inp.name
        self.input_dtype = np.dtype(_ONNX_TYPES.get(inp.type, np.float32))
        self.sample_shape = tuple(_dim(d) for d in inp.shape[1:])
        self.fixed_batch = _dim(inp.shape[0]) if inp.shape else None
        self.output_name = self.session.get_outputs()[0].name
        self.sequence_length = sequence_length_of(self.sample_shape)

    def _run(self, x: np.ndarray) -> np.ndarray:
        feed = {self.input_name: x.astype(self.input_dtype, copy=False)}
        out = self.session.run([self.output_name], feed)[0]
        return np.asarray(out, dtype=np.float32).reshape(len(x), -1)

    def describe(self) -> dict:
        return {**super().describe(), "threads": self.threads, "providers": self.session.get_providers()}
