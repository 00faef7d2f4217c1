"""`tflite_fp32`: plain LiteRT conversion (float32 weights and activations)."""

from __future__ import annotations

from pilotopt.techniques import _tflite
from pilotopt.techniques._core import TF, Result, TechniqueContext, register_technique


@register_technique("tflite_fp32", conversion=True, framework=TF, runtime="litert", order=20, tolerance=1e-3,
                    description="plain LiteRT conversion, float32")
def apply(ctx: TechniqueContext) -> Result:
    return _tflite.write(ctx, *_tflite.convert(ctx))
