"""`onnx_int8_dynamic`: ONNX Runtime dynamic quantization: int8 weights stored in the file,
activations quantized on the fly per batch (DynamicQuantizeLinear feeding ConvInteger /
MatMulInteger), so no calibration data is needed."""

from __future__ import annotations

from dataclasses import dataclass

from pilotopt.techniques import _onnx
from pilotopt.techniques._core import ONNX_SOURCES, TORCH, Result, TechniqueContext, register_technique
from pilotopt.techniques._settings import Settings, setting


@dataclass(frozen=True)
class DynamicSettings(Settings):
    per_channel: bool = setting(False, "one weight scale per output channel (false, ORT's default: per tensor)")


@register_technique("onnx_int8_dynamic", framework=TORCH, accepts=ONNX_SOURCES, runtime="onnxruntime", order=220,
                    settings=DynamicSettings,
                    description="ONNX Runtime dynamic quantization: int8 weights, activations quantized at run time")
def apply(ctx: TechniqueContext) -> Result:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    dest = ctx.out / _onnx.ARTIFACT
    with _onnx.scratch() as tmp:
        details = _onnx.export_baseline(ctx, tmp / "fp32.onnx")
        pre = _onnx.preprocess(tmp / "fp32.onnx", tmp / "pre.onnx")
        quantize_dynamic(str(pre), str(dest), per_channel=ctx.settings.per_channel, weight_type=QuantType.QInt8)
    return Result(_onnx.ARTIFACT, {**details, "quantization": "dynamic", "weight_type": "int8",
                                   "per_channel": ctx.settings.per_channel, **_onnx.describe(dest)})
