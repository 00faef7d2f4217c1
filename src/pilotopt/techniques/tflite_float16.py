"""`tflite_float16`: post-training float16 quantization: weights stored float16 (dequantized to
float32 at load on CPU), input/output float32."""

from __future__ import annotations

from pilotopt.techniques import _tflite
from pilotopt.techniques._core import TF, Result, TechniqueContext, register_technique


@register_technique("tflite_float16", framework=TF, runtime="litert", order=22, tolerance=1e-2,
                    description="LiteRT, weights float16")
def apply(ctx: TechniqueContext) -> Result:
    tf = ctx.tf

    def configure(conv):
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.target_spec.supported_types = [tf.float16]

    data, details = _tflite.convert(ctx, configure)
    return _tflite.write(ctx, data, {**details, "quantization": "float16"})
