"""`onnx_int8_static`: ONNX Runtime static post-training quantization in Q/DQ format: int8
weights (per output channel by default), int8/uint8 activations whose ranges are calibrated on
TRAINING frames, after ORT's quant_pre_process (shape inference + graph optimization)."""

from __future__ import annotations

from pilotopt.techniques import _onnx
from pilotopt.techniques._core import ONNX_SOURCES, TORCH, Result, TechniqueContext, register_technique


@register_technique("onnx_int8_static", framework=TORCH, accepts=ONNX_SOURCES, runtime="onnxruntime", order=230, needs_data=True,
                    settings=_onnx.StaticQuantSettings,
                    description="ONNX Runtime static Q/DQ int8, activations calibrated on training frames")
def apply(ctx: TechniqueContext) -> Result:
    s: _onnx.StaticQuantSettings = ctx.settings
    dest = ctx.out / _onnx.ARTIFACT
    with _onnx.scratch() as tmp:
        details = _onnx.export_baseline(ctx, tmp / "fp32.onnx")
        details.update(_onnx.quantize_static_qdq(ctx, tmp / "fp32.onnx", dest, n_frames=s.calibration_frames,
                                                 per_channel=s.per_channel, activation_type=s.activation_type,
                                                 calibrate_method=s.calibrate_method, keep_float=s.float_nodes,
                                                 reduce_range=s.reduce_range))
    return Result(_onnx.ARTIFACT, {**details, **_onnx.describe(dest)})
