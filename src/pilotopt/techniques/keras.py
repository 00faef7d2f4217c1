"""`keras`: the trained Keras model as-is (the TensorFlow baseline, run by the keras predictor)."""

from __future__ import annotations

from pilotopt.models import keras_macs
from pilotopt.techniques._core import TF, Result, TechniqueContext, register_technique


@register_technique("keras", framework=TF, runtime="keras", order=10, tolerance=1e-5,
                    description="the trained Keras model as-is (baseline, compiled tf.function)")
def apply(ctx: TechniqueContext) -> Result:
    model = ctx.keras_model()  # proves it loads; the artifact is the unchanged file
    name = ctx.copy_baseline()
    macs = keras_macs(model)  # counted from the file: the TF rows' MMACs and % of peak start here
    return Result(name, {"params": int(model.count_params()), **({"macs": macs} if macs else {})})
