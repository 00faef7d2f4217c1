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
    tf = ctx.tf
    gen, n = _tflite.representative_dataset(ctx, ctx.settings.representative_frames)

    def configure(conv):
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = gen
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8

    data, details = _tflite.convert(ctx, configure)
    return _tflite.write(ctx, data, {**details, "quantization": "full_integer", "representative_frames": n,
                                     "representative_from": "train"})
