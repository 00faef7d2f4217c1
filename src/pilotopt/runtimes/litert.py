"""LiteRT (ai_edge_litert, formerly TensorFlow Lite) predictor for .tflite files.

Quantized models: an int8/uint8 input is quantized with the input tensor's scale and zero point
(round, then clip to the dtype's range) and an int8/uint8 output is DEQUANTIZED with the output
tensor's own scale and zero point, so every model returns normalized (v, w) in float32. Reading
the raw int8 output as if it were (v, w) is the classic bug that turns an MSE of 0.005 into
tens of thousands."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pilotopt_edge.runtimes import dequantize, quantize  # noqa: F401  (the car's own, re-exported)

from pilotopt.frameworks import quiet_stderr, require_package
from pilotopt.runtimes import register_runtime
from pilotopt.runtimes.base import (Predictor, check_frames, load_failed, require_file, run_in_chunks,
                                    sequence_length_of)


def _qparams(details: dict) -> tuple[float, int]:
    scale, zero = details.get("quantization", (0.0, 0))
    return float(scale), int(zero)


@register_runtime("litert")
class LiteRTPredictor(Predictor):
    runtime = "litert"

    def __init__(self, path: Path, threads: int | None = None, **_):
        interpreter_mod = require_package("ai_edge_litert.interpreter", "ai-edge-litert")
        self.path = require_file(path, (".tflite",), "LiteRT", "litert")
        self.threads = threads

        try:
            with quiet_stderr():  # "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
                self.interpreter = interpreter_mod.Interpreter(model_path=str(self.path), num_threads=threads)
                self.interpreter.allocate_tensors()
        except Exception as exc:  # not a flatbuffer, truncated, unsupported op
            raise load_failed("LiteRT", self.path, exc) from None
        inputs = self.interpreter.get_input_details()
        outputs = self.interpreter.get_output_details()
        if len(inputs) != 1 or not outputs:
            raise load_failed("LiteRT", self.path, ValueError(
                f"expected one input and an output, found {len(inputs)} inputs and {len(outputs)} outputs"))
        self.input_details, self.output_details = inputs[0], outputs[0]
        signature = self.input_details.get("shape_signature")
        if signature is None or len(signature) == 0:
            signature = self.input_details["shape"]
        self.dynamic_batch = int(signature[0]) == -1
        self.sample_shape = tuple(None if int(d) < 0 else int(d) for d in signature[1:])
        self._batch = int(self.input_details["shape"][0])
        self.sequence_length = sequence_length_of(self.sample_shape)

    @property
    def input_dtype(self) -> np.dtype:
        return np.dtype(self.input_details["dtype"])

    @property
    def output_dtype(self) -> np.dtype:
        return np.dtype(self.output_details["dtype"])

    def raw_output(self, x: np.ndarray) -> np.ndarray:
        """One invocation on a batch of exactly the allocated size; the output tensor as stored
        (int8 for a full-integer model). Tests use it to prove dequantization happens."""
        it = self.interpreter
        it.set_tensor(self.input_details["index"], quantize(x, self.input_details))
        it.invoke()
        return it.get_tensor(self.output_details["index"])

    def _run(self, x: np.ndarray) -> np.ndarray:
        return dequantize(self.raw_output(x), self.output_details).reshape(len(x), -1)

    def _resize(self, n: int, sample: tuple) -> None:
        self.interpreter.resize_tensor_input(self.input_details["index"], [n, *sample], strict=True)
        self.interpreter.allocate_tensors()
        self.input_details = self.interpreter.get_input_details()[0]
        self.output_details = self.interpreter.get_output_details()[0]
        self._batch = n

    def predict(self, x: np.ndarray) -> np.ndarray:
        x = check_frames(x, self.sample_shape, self.path)
        n = len(x)
        if n == 0:
            return np.zeros((0, 2), np.float32)
        if not self.dynamic_batch:  # a batch-1 (fixed batch) model: loop over the batch
            return run_in_chunks(self._run, x, self._batch)
        if n != self._batch:
            self._resize(n, x.shape[1:])
        return self._run(x)

    def describe(self) -> dict:
        return {**super().describe(), "threads": self.threads, "dynamic_batch": self.dynamic_batch,
                "input_dtype": str(self.input_dtype), "output_dtype": str(self.output_dtype),
                "input_quantization": _qparams(self.input_details),
                "output_quantization": _qparams(self.output_details)}
