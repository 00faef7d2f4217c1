"""`keras`: the trained Keras model as-is (the TensorFlow baseline, run by the keras predictor)."""

from __future__ import annotations

from pilotopt.techniques._core import TF, Result, TechniqueContext, register_technique


@register_technique("keras", framework=TF, runtime="keras", order=10, tolerance=1e-5,
                    description="the trained Keras model as-is (baseline, compiled tf.function)")
def apply(ctx: TechniqueContext) -> Result:
    model = ctx.keras_model()  # proves it loads; the artifact is the unchanged file
    name = ctx.copy_baseline()
    return Result(name, {"params": int(model.count_params())})
