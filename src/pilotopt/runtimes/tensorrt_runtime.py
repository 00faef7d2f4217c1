"""TensorRT predictor for serialized engines (.engine / .plan), built from ONNX by
`pilotopt.techniques.tensorrt_engines`.

UNTESTED ON CPU MACHINES: the development machine has no NVIDIA GPU, so only the
"skipped: no NVIDIA GPU/TensorRT" path runs in the test suite. tensorrt is imported only inside
the constructor, after the availability check, so nothing here touches CUDA on a CPU machine.
Buffers are torch CUDA tensors (no pycuda); written against the TensorRT 10 name-based tensor
API (num_io_tensors / set_input_shape / set_tensor_address / execute_async_v3)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from pilotopt.errors import RuntimeUnavailable
from pilotopt.runtimes import register_runtime
from pilotopt.runtimes.base import Predictor, check_frames, load_failed, require_file, sequence_length_of

UNAVAILABLE = "no NVIDIA GPU/TensorRT on this machine"




def require_tensorrt():
    """(tensorrt, torch) when TensorRT and a CUDA device are usable, else RuntimeUnavailable."""
    if importlib.util.find_spec("tensorrt") is None:
        raise RuntimeUnavailable(UNAVAILABLE)
    try:
        import torch
    except ImportError:
        raise RuntimeUnavailable(UNAVAILABLE) from None
    if not torch.cuda.is_available():
        raise RuntimeUnavailable(UNAVAILABLE)
    import tensorrt as trt

    return trt, torch


@register_runtime("tensorrt")
class TensorRTPredictor(Predictor):  # pragma: no cover - needs an NVIDIA GPU
    runtime = "tensorrt"

    def __init__(self, path: Path, threads: int | None = None, **_):
        trt, torch = require_tensorrt()
        self.torch = torch
        self.path = require_file(path, (".engine", ".plan"), "TensorRT", "tensorrt")
        self.logger = trt.Logger(trt.Logger.WARNING)
        try:
            self.engine = trt.Runtime(self.logger).deserialize_cuda_engine(self.path.read_bytes())
            if self.engine is None:
                raise ValueError("deserialize_cuda_engine returned None (corrupt, or built for another "
                                 "TensorRT version/GPU)")
            self.context = self.engine.create_execution_context()
        except Exception as exc:
            raise load_failed("TensorRT", self.path, exc) from None
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        ins = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        self.input_name, self.output_name = ins[0], outs[0]
        shape = tuple(self.engine.get_tensor_shape(self.input_name))
        self.sample_shape = tuple(None if d < 0 else int(d) for d in shape[1:])
        self.sequence_length = sequence_length_of(self.sample_shape)
        profile_max = lambda: int(self.engine.get_tensor_profile_shape(self.input_name, 0)[2][0])  # noqa: E731
        self.max_batch = shape[0] if shape[0] > 0 else profile_max()
        to_torch = {np.dtype(np.float32): torch.float32, np.dtype(np.float16): torch.float16,
                    np.dtype(np.int8): torch.int8, np.dtype(np.uint8): torch.uint8}
        self.in_dtype = to_torch[np.dtype(trt.nptype(self.engine.get_tensor_dtype(self.input_name)))]
        self.out_dtype = to_torch[np.dtype(trt.nptype(self.engine.get_tensor_dtype(self.output_name)))]
        self.stream = torch.cuda.Stream()

    def _run(self, x: np.ndarray) -> np.ndarray:
        torch = self.torch
        with torch.cuda.stream(self.stream):
            xin = torch.from_numpy(x).to("cuda", non_blocking=False).to(self.in_dtype).contiguous()
            self.context.set_input_shape(self.input_name, tuple(xin.shape))
            out = torch.empty(tuple(self.context.get_tensor_shape(self.output_name)), dtype=self.out_dtype,
                              device="cuda")
            self.context.set_tensor_address(self.input_name, xin.data_ptr())
            self.context.set_tensor_address(self.output_name, out.data_ptr())
            if not self.context.execute_async_v3(self.stream.cuda_stream):
                raise RuntimeError(f"TensorRT execution failed for '{self.path}'")
        self.stream.synchronize()
        return out.float().cpu().numpy().reshape(len(x), -1)

    def predict(self, x: np.ndarray) -> np.ndarray:
        x = check_frames(x, self.sample_shape, self.path)
        if len(x) == 0:
            return np.zeros((0, 2), np.float32)
        step = self.max_batch
        return np.concatenate([self._run(x[i:i + step]) for i in range(0, len(x), step)])
