"""`onnx_fp32`: the PyTorch baseline exported to ONNX (dynamo exporter, dynamic batch, weights in
the file), run by ONNX Runtime on the CPU. The starting point of every ONNX-based variant."""

from __future__ import annotations

from pilotopt.techniques import _onnx
from pilotopt.techniques._core import ONNX_SOURCES, TORCH, Result, TechniqueContext, register_technique


@register_technique("onnx_fp32", conversion=True, framework=TORCH, accepts=ONNX_SOURCES, runtime="onnxruntime", order=200, tolerance=1e-3,
                    description="ONNX fp32 export of the PyTorch baseline, run by ONNX Runtime")
def apply(ctx: TechniqueContext) -> Result:
    details = _onnx.export_baseline(ctx, ctx.out / _onnx.ARTIFACT)
    return Result(_onnx.ARTIFACT, {**details, "precision": "fp32", **_onnx.describe(ctx.out / _onnx.ARTIFACT)})
