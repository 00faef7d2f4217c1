"""`tflite_fp32`: the Keras model converted with tf.lite.TFLiteConverter.from_keras_model (no
optimizations: float32 weights and activations, dynamic batch). Conversion still lives in
TensorFlow; inference uses ai_edge_litert (runtimes/litert.py)."""

from __future__ import annotations

from pathlib import Path

from pilotopt.export import register_exporter
from pilotopt.export.base import TF, ExportContext


def convert_keras(model, configure=None) -> bytes:
    """TFLite flatbuffer bytes of a Keras model; `configure(converter)` may set quantization."""
    from pilotopt.frameworks import import_tf

    tf = import_tf()
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if configure is not None:
        configure(converter)
    return converter.convert()


def convert_keras_batch1(model, configure=None) -> bytes:
    """The same, traced at a fixed batch of 1: recurrent models (ConvLSTM2D) only convert to
    builtin ops this way; with a dynamic batch their TensorList ops would need the Flex
    (SELECT_TF_OPS) delegate, which ai_edge_litert does not ship. The predictor loops over the batch."""
    from pilotopt.frameworks import import_tf

    tf = import_tf()
    spec = tf.TensorSpec((1, *model.input_shape[1:]), tf.float32)
    concrete = tf.function(lambda x: model(x, training=False), input_signature=[spec]).get_concrete_function()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], model)
    if configure is not None:
        configure(converter)
    return converter.convert()


def _needs_fixed_batch(exc: Exception) -> bool:
    return "tensor list" in str(exc).lower() or "TensorList" in str(exc)


@register_exporter("tflite_fp32", framework=TF, runtime="litert", artifact="model.tflite", order=70)
def export_tflite(ctx: ExportContext, dest: Path) -> dict:
    import tensorflow as tf

    details = {"tensorflow": tf.__version__, "converter": "TFLiteConverter.from_keras_model"}
    try:
        dest.write_bytes(convert_keras(ctx.keras_model()))
    except Exception as exc:  # ConverterError
        if not _needs_fixed_batch(exc):
            raise
        dest.write_bytes(convert_keras_batch1(ctx.keras_model()))
        details.update(converter="TFLiteConverter.from_concrete_functions", fixed_batch=1,
                       note="recurrent model: TensorList ops lower to builtins only at a fixed batch of 1")
    return details
