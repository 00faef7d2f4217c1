"""`tflite_dynamic_range`: post-training dynamic range quantization (Optimize.DEFAULT, no
representative data): weights stored int8, activations float, input/output float32."""

from __future__ import annotations

from pilotopt.techniques import _tflite
from pilotopt.techniques._core import TF, Result, TechniqueContext, register_technique


@register_technique("tflite_dynamic_range", framework=TF, runtime="litert", order=21,
                    description="LiteRT, weights int8, activations float (dynamic range)")
def apply(ctx: TechniqueContext) -> Result:
    tf = ctx.tf

    def configure(conv):
        conv.optimizations = [tf.lite.Optimize.DEFAULT]

    data, details = _tflite.convert(ctx, configure)
    return _tflite.write(ctx, data, {**details, "quantization": "dynamic_range"})
