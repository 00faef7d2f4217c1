"""`openvino_fp32`: OpenVINO IR (model.xml + model.bin) converted from the baseline's fp32 ONNX,
weights kept fp32, compiled by the openvino runtime with the f32 precision hint (OpenVINO would
otherwise run fp32 models in bf16 on CPUs with bf16 support)."""

from __future__ import annotations

from pilotopt.techniques import _onnx
from pilotopt.techniques._core import ONNX_SOURCES, TORCH, Result, TechniqueContext, register_technique


@register_technique("openvino_fp32", conversion=True, framework=TORCH, accepts=ONNX_SOURCES, runtime="openvino", order=240, tolerance=1e-3,
                    description="OpenVINO IR fp32 (from the ONNX export), run in f32")
def apply(ctx: TechniqueContext) -> Result:
    model, details = _onnx.openvino_model(ctx)
    return _onnx.save_ir(ctx, model, {**details, "precision": "fp32"})
