"""The runtimes a deploy folder's model can run on, one loader each, imported only when used.

Each loader returns a `Model`: `predict(x)` takes a float32 batch in the model's own layout and
returns its raw outputs (N, 2) as float32 (int8 tensors quantized in and dequantized out with the
tensor's own scale and zero point), as pilotopt's runtimes run the same files."""

from __future__ import annotations

import importlib
from typing import Callable, Dict, Optional

import numpy as np

from pilotopt_edge.errors import EdgeError

# runtime name -> (module to import, pip extra)
EXTRAS = {"litert": ("ai_edge_litert.interpreter", "litert"), "onnxruntime": ("onnxruntime", "onnxruntime"),
          "openvino": ("openvino", "openvino")}
_LOADERS: Dict[str, Callable] = {}


def _loader(name: str):
    def deco(fn):
        _LOADERS[name] = fn
        return fn
    return deco


def runtime_names():
    return sorted(_LOADERS)


def require(runtime: str):
    """The runtime's Python module, or a one-line error naming the extra that installs it."""
    if runtime not in EXTRAS:
        raise EdgeError(f"runtime '{runtime}' has no edge loader; the edge package runs {', '.join(sorted(EXTRAS))}")
    module, extra = EXTRAS[runtime]
    try:
        return importlib.import_module(module)
    except ImportError:
        raise EdgeError(f"runtime '{runtime}' is not installed here: pip install 'pilotopt-edge[{extra}]'") from None


def available() -> Dict[str, Optional[str]]:
    """runtime -> its version where importable here, None where not."""
    found = {}
    for name, (module, _) in EXTRAS.items():
        try:
            mod = importlib.import_module(module.split(".")[0])
            found[name] = str(getattr(mod, "__version__", None) or getattr(mod, "get_version", lambda: "?")())
        except ImportError:
            found[name] = None
    return found


class Model:
    runtime = ""
    version = ""

    def predict(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError


def load_model(path: str, runtime: str, threads: int = 1) -> Model:
    if runtime not in _LOADERS:
        raise EdgeError(f"runtime '{runtime}' has no edge loader; the edge package runs {', '.join(runtime_names())}")
    mod = require(runtime)
    try:
        return _LOADERS[runtime](mod, path, threads)
    except EdgeError:
        raise
    except Exception as exc:  # a truncated or foreign file: the runtime's own words, on one line
        text = " ".join(str(exc).split())[:200]
        raise EdgeError(f"{runtime} cannot load {path} ({type(exc).__name__}: {text}); "
                        "redeploy the folder with pilotopt deploy") from None


def quantize(x: np.ndarray, detail: dict) -> np.ndarray:
    """float32 values -> the tensor's dtype: round(x / scale + zero point), saturated, if integer."""
    dtype = np.dtype(detail["dtype"])
    if np.issubdtype(dtype, np.integer):
        scale, zero = detail.get("quantization", (0.0, 0))
        q = np.round(x / scale + zero) if scale else np.round(x)
        info = np.iinfo(dtype)
        return np.clip(q, info.min, info.max).astype(dtype)
    return x.astype(dtype, copy=False)


def dequantize(y: np.ndarray, detail: dict) -> np.ndarray:
    """The tensor's values -> float32: (q - zero point) * scale if integer."""
    if np.issubdtype(np.dtype(detail["dtype"]), np.integer):
        scale, zero = detail.get("quantization", (0.0, 0))
        if scale:
            return ((y.astype(np.float32) - np.float32(zero)) * np.float32(scale)).astype(np.float32)
    return y.astype(np.float32, copy=False)


class _LiteRT(Model):
    runtime = "litert"

    def __init__(self, mod, path, threads):
        self.interpreter = mod.Interpreter(model_path=str(path), num_threads=threads)
        self.interpreter.allocate_tensors()
        self.inp = self.interpreter.get_input_details()[0]
        self.out = self.interpreter.get_output_details()[0]
        self.version = str(getattr(importlib.import_module("ai_edge_litert"), "__version__", "?"))

    def _one(self, x):
        it = self.interpreter
        it.set_tensor(self.inp["index"], quantize(x, self.inp))
        it.invoke()
        return dequantize(it.get_tensor(self.out["index"]), self.out).reshape(len(x), -1)

    def predict(self, x):
        batch = int(self.inp["shape"][0])
        if len(x) == batch:
            return self._one(x)
        return np.concatenate([self._one(x[i:i + 1]) for i in range(len(x))]) if batch == 1 else self._resized(x)

    def _resized(self, x):
        self.interpreter.resize_tensor_input(self.inp["index"], list(x.shape), strict=True)
        self.interpreter.allocate_tensors()
        self.inp = self.interpreter.get_input_details()[0]
        self.out = self.interpreter.get_output_details()[0]
        return self._one(x)


class _OnnxRuntime(Model):
    runtime = "onnxruntime"

    def __init__(self, ort, path, threads):
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(threads or 0)
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        inp = self.session.get_inputs()[0]
        self.input = inp.name
        self.dtype = np.float16 if inp.type == "tensor(float16)" else np.float32
        self.version = ort.__version__

    def predict(self, x):
        out = self.session.run(None, {self.input: x.astype(self.dtype, copy=False)})[0]
        return np.asarray(out, dtype=np.float32).reshape(len(x), -1)


class _OpenVINO(Model):
    runtime = "openvino"

    def __init__(self, ov, path, threads):
        core = ov.Core()
        # f32 hint: OpenVINO otherwise runs fp32 models in bf16 on CPUs with AMX / AVX512-BF16
        config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"}
        if threads:
            config["INFERENCE_NUM_THREADS"] = int(threads)
        model = core.read_model(str(path))
        self.dtype = np.dtype(model.inputs[0].get_element_type().to_dtype())
        self.compiled = core.compile_model(model, "CPU", config)
        self.request = self.compiled.create_infer_request()
        self.version = str(ov.get_version())

    def predict(self, x):
        out = self.request.infer({0: x.astype(self.dtype, copy=False)})
        return np.asarray(next(iter(out.values())), dtype=np.float32).reshape(len(x), -1)


_loader("litert")(_LiteRT)
_loader("onnxruntime")(_OnnxRuntime)
_loader("openvino")(_OpenVINO)
