"""`tflite_int8`: full integer post-training quantization: int8 weights and activations, int8
input AND output (builtin int8 ops only; conversion fails rather than falling back to float),
activation ranges calibrated on preprocessed TRAINING frames (float32 pixels 0..255). The
litert predictor quantizes the input and dequantizes the output with the tensors' own parameters."""

from __future__ import annotations

from pilotopt.techniques import _tflite
from pilotopt.techniques._core import TF, Result, TechniqueContext, register_technique


@register_technique("tflite_int8", framework=TF, runtime="litert", order=23, needs_data=True,
                    settings=_tflite.CalibrationSettings,
                    description="LiteRT full integer: int8 weights, activations, input and output")
def apply(ctx: TechniqueContext) -> Result:
    return _tflite.integer_quantize(ctx, full_integer=True)
