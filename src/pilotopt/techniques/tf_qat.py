"""`tf_qat`: quantization-aware training with TF-MOT: `quantize_model` (8-bit default scheme; the
Rescaling input layer is registered by pilotopt.models.register_tfmot_layers), a short fine-tune on
the TRAINING split, then LiteRT conversion with Optimize.DEFAULT: int8 weights and activations,
float32 input/output (QUANTIZE/DEQUANTIZE at the edges). If quantize_model refuses the whole model,
only Conv2D/Dense layers are annotated (quantize_annotate_layer + quantize_apply); the record says
which path was taken ("annotation")."""

from __future__ import annotations

from dataclasses import dataclass

from pilotopt.errors import one_line
from pilotopt.techniques import _tflite
from pilotopt.techniques._settings import FineTuneSettings, calibration
from pilotopt.techniques._core import TF, Result, TechniqueContext, register_technique
from pilotopt.techniques._tfmot_fit import fine_tune, tfmot_version
from pilotopt.techniques.tf_prune import _available


@dataclass(frozen=True)
class QatSettings(FineTuneSettings):
    epochs: int = 1
    calibration_frames: int = calibration(100, "the conversion, for any tensor QAT left without ranges")


@register_technique("tf_qat", framework=TF, runtime="litert", order=43, needs_data=True, settings=QatSettings,
                    available=_available,
                    description="TF-MOT quantization-aware training, fine-tune, LiteRT int8 (float I/O)")
def apply(ctx: TechniqueContext) -> Result:
    s: QatSettings = ctx.settings
    tf = ctx.tf
    import tensorflow_model_optimization as tfmot
    import tf_keras as keras

    keras.utils.set_random_seed(ctx.seed)
    q = tfmot.quantization.keras
    model = ctx.keras_model()
    annotation, refused = "quantize_model", None
    try:
        qat = q.quantize_model(model)
    except Exception as exc:  # a layer TF-MOT cannot quantize: annotate Conv2D/Dense only
        refused = one_line(exc, limit=200)
        model = ctx.keras_model()

        def annotate(layer):
            if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)):
                return q.quantize_annotate_layer(layer)
            return layer

        with q.quantize_scope():
            qat = q.quantize_apply(keras.models.clone_model(model, clone_function=annotate))
        annotation = "quantize_annotate_layer(Conv2D/Dense) + quantize_apply"
    fit = fine_tune(ctx, qat, epochs=s.epochs, batch_size=s.batch_size, learning_rate=s.learning_rate, augment=s.augment,
                    max_train_frames=s.max_train_frames)
    gen, n = _tflite.representative_dataset(ctx, s.calibration_frames)

    def configure(conv):
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = gen

    data, details = _tflite.convert(ctx, configure, model=qat)
    return _tflite.write(ctx, data, {
        **details, **fit, "quantization": "qat_int8", "annotation": annotation, "quantize_model_refused": refused,
        "calibration_frames": n, "calibration_from": "train",
        "tensorflow_model_optimization": tfmot_version(),
    })
