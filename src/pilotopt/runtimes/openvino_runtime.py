"""OpenVINO predictor for IR models (.xml + .bin), or .onnx files when runtime='openvino' is
asked for explicitly (.onnx is detected as ONNX Runtime otherwise).

Compiled for the CPU with the LATENCY performance hint, a fixed thread count and an explicit
INFERENCE_PRECISION_HINT. The hint matters: on CPUs with bf16 support (AMX / AVX512-BF16)
OpenVINO silently runs an fp32 model in bf16 unless told otherwise, so a row labelled fp32 would
not be fp32. The default here is f32; a bf16 (or f16) variant asks for it with `precision=` or
with `"inference_precision"` in its variant.json record. An int8 (NNCF-quantized) IR keeps its
int8 operations under any hint; the hint only governs the floating-point parts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from pilotopt.errors import BadInputError
from pilotopt.frameworks import require_package
from pilotopt.runtimes import register_runtime
from pilotopt.runtimes.base import CheckedPredictor, load_failed, require_file, sequence_length_of

PRECISIONS = {"f32": "f32", "fp32": "f32", "bf16": "bf16", "f16": "f16", "fp16": "f16"}




def _precision_from_variant(path: Path) -> str | None:
    """`record.inference_precision` of the variant folder holding this artifact, if any."""
    doc = path.parent / "variant.json"
    try:
        return (json.loads(doc.read_text()).get("record") or {}).get("inference_precision")
    except (OSError, ValueError, AttributeError):
        return None


def _type_name(t) -> str:
    return t.get_type_name() if hasattr(t, "get_type_name") else str(t)


@register_runtime("openvino")
class OpenVINOPredictor(CheckedPredictor):
    runtime = "openvino"

    def __init__(self, path: Path, threads: int | None = None, precision: str | None = None, **_):
        ov = require_package("openvino")
        self.path = require_file(path, (".xml", ".onnx"), "OpenVINO", "openvino")
        precision = precision or _precision_from_variant(self.path) or "f32"
        if str(precision).lower() not in PRECISIONS:
            raise BadInputError(f"unknown OpenVINO inference precision '{precision}'; choose f32, bf16 or f16")
        self.precision = PRECISIONS[str(precision).lower()]
        self.threads = threads
        config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": self.precision}
        if threads:
            config["INFERENCE_NUM_THREADS"] = int(threads)
        if self.path.suffix == ".xml" and not self.path.with_suffix(".bin").is_file():
            raise BadInputError(f"OpenVINO model '{self.path}' has no weights file "
                                f"'{self.path.with_suffix('.bin').name}' next to it; copy or re-export both")
        try:
            self.core = ov.Core()
            model = self.core.read_model(str(self.path))
            if len(model.inputs) != 1:
                raise ValueError(f"expected one input, found {len(model.inputs)}")
            inp = model.inputs[0]
            pshape = inp.get_partial_shape()
            dims = [d.get_length() if d.is_static else None for d in pshape]
            self.input_dtype = np.dtype(inp.get_element_type().to_dtype())
            self.compiled = self.core.compile_model(model, "CPU", config)
        except Exception as exc:  # XML parse errors, truncated .bin ("Incorrect weights in bin file")
            raise load_failed("OpenVINO", self.path, exc) from None
        self.sample_shape = tuple(dims[1:])
        self.fixed_batch = dims[0] if dims else None
        self.sequence_length = sequence_length_of(self.sample_shape)
        self._request = self.compiled.create_infer_request()
        self._output = self.compiled.output(0)

    def property(self, name: str):
        """A property of the compiled model, e.g. 'INFERENCE_PRECISION_HINT'."""
        return self.compiled.get_property(name)

    def _run(self, x: np.ndarray) -> np.ndarray:
        result = self._request.infer({0: x.astype(self.input_dtype, copy=False)})
        return np.array(result[self._output], dtype=np.float32).reshape(len(x), -1)

    def describe(self) -> dict:
        return {**super().describe(), "threads": self.threads,
                "inference_precision": _type_name(self.property("INFERENCE_PRECISION_HINT")),
                "inference_num_threads": int(self.property("INFERENCE_NUM_THREADS"))}
