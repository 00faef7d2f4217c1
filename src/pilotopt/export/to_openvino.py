"""`openvino_fp32`: OpenVINO IR (.xml + .bin) converted from the fp32 ONNX with ov.convert_model,
saved with compress_to_fp16=False (the default would store fp16 weights). The predictor compiles
it with INFERENCE_PRECISION_HINT=f32 so it also RUNS in fp32 (see runtimes/openvino_runtime.py)."""

from __future__ import annotations

from pathlib import Path

from pilotopt.export import register_exporter
from pilotopt.export.base import TORCH, ExportContext
from pilotopt.runtimes._util import require_package


@register_exporter("openvino_fp32", framework=TORCH, runtime="openvino", artifact="model.xml", order=50)
def export_openvino(ctx: ExportContext, dest: Path) -> dict:
    ov = require_package("openvino")
    model = ov.convert_model(str(ctx.onnx_file()))
    ov.save_model(model, str(dest), compress_to_fp16=False)  # writes model.xml and model.bin
    return {"model": ctx.model_name, "openvino": ov.__version__, "from": "onnx_fp32",
            "compress_to_fp16": False, "inference_precision": "f32"}
