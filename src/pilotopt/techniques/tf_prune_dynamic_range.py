"""`tf_prune_dynamic_range`: the same TF-MOT magnitude pruning as `tf_prune` (polynomial 0.5 -> 0.8,
fine-tune on the TRAINING split, strip_pruning), then dynamic-range quantization at conversion
(Optimize.DEFAULT without representative data): weights stored int8 (zeros stay exact zeros under
symmetric int8 quantization), activations and input/output float32."""

from __future__ import annotations

import numpy as np

from pilotopt.techniques import _tflite
from pilotopt.techniques._core import TF, Result, TechniqueContext, register_technique
from pilotopt.techniques._tfmot_fit import fine_tune, kernels, steps, tfmot_version
from pilotopt.techniques.tf_prune import PruneSettings, _available


@register_technique("tf_prune_dynamic_range", framework=TF, runtime="litert", order=41, needs_data=True,
                    settings=PruneSettings, available=_available,
                    description="TF-MOT pruning 0.5 -> 0.8, fine-tune, strip, LiteRT dynamic range (int8 weights)")
def apply(ctx: TechniqueContext) -> Result:
    s: PruneSettings = ctx.settings
    tf = ctx.tf
    import tensorflow_model_optimization as tfmot
    import tf_keras as keras

    keras.utils.set_random_seed(ctx.seed)
    model = ctx.keras_model()
    total = steps(ctx, s.epochs, s.batch_size, s.max_train_frames)
    frequency = max(1, min(s.frequency, total - 1)) if total > 1 else 1
    end_step = max(0, ((total - 1) // frequency) * frequency)  # last mask update reaches final sparsity
    schedule = tfmot.sparsity.keras.PolynomialDecay(initial_sparsity=s.initial_sparsity,
                                                    final_sparsity=s.final_sparsity, begin_step=0,
                                                    end_step=end_step, frequency=frequency)
    pruned = tfmot.sparsity.keras.prune_low_magnitude(model, pruning_schedule=schedule)
    fit = fine_tune(ctx, pruned, epochs=s.epochs, batch_size=s.batch_size, learning_rate=s.learning_rate,
                    max_train_frames=s.max_train_frames, callbacks=[tfmot.sparsity.keras.UpdatePruningStep()])
    stripped = tfmot.sparsity.keras.strip_pruning(pruned)
    ks = kernels(stripped)
    total_w = sum(k.size for k in ks.values())

    def configure(conv):
        conv.optimizations = [tf.lite.Optimize.DEFAULT]

    data, details = _tflite.convert(ctx, configure, model=stripped)
    return _tflite.write(ctx, data, {
        **details, **fit, "quantization": "dynamic_range",
        "sparsity_per_layer": {n: float(np.mean(k == 0)) for n, k in ks.items()},
        "sparsity_overall": float(sum(int(np.sum(k == 0)) for k in ks.values()) / total_w) if total_w else 0.0,
        "schedule_end_step": int(end_step), "schedule_frequency": int(frequency),
        "tensorflow_model_optimization": tfmot_version(),
    })
