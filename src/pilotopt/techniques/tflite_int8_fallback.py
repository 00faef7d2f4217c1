"""`tflite_int8_fallback`: integer quantization with float fallback: int8 weights and activations
where an int8 kernel exists (float otherwise), float32 input and output (quantize/dequantize ops
at the edges); activation ranges calibrated on preprocessed TRAINING frames."""

from __future__ import annotations

from pilotopt.techniques import _tflite
from pilotopt.techniques._core import TF, Result, TechniqueContext, register_technique


@register_technique("tflite_int8_fallback", framework=TF, runtime="litert", order=24, needs_data=True,
                    settings=_tflite.CalibrationSettings,
                    description="LiteRT integer with float fallback, float input and output")
def apply(ctx: TechniqueContext) -> Result:
    return _tflite.integer_quantize(ctx, full_integer=False)
