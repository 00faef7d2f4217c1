"""`tf_prune`: TF-MOT magnitude pruning (prune_low_magnitude) of every prunable layer with a
PolynomialDecay schedule [0.5 -> 0.8 sparsity], a short fine-tune on the TRAINING split,
strip_pruning, then plain LiteRT conversion. The record holds the sparsity reached per layer."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pilotopt.techniques._core import TF, Result, TechniqueContext, register_technique
from pilotopt.techniques._settings import FineTuneSettings, setting
from pilotopt.techniques._tfmot_fit import fine_tune, kernels, steps, tfmot_version, save_keras


@dataclass(frozen=True)
class MaskUpdateSettings(FineTuneSettings):
    """Fine-tuning while TF-MOT updates the pruning masks every `frequency` steps."""

    frequency: int = setting(10, "fine-tuning steps between pruning mask updates", ge=1)


@dataclass(frozen=True)
class PruneSettings(MaskUpdateSettings):
    _ordered = (("initial_sparsity", "final_sparsity"),)

    initial_sparsity: float = setting(0.5, "sparsity at the start of the polynomial schedule", ge=0, lt=1)
    final_sparsity: float = setting(0.8, "sparsity reached at the end of the fine-tune", ge=0, lt=1)


def _available() -> tuple[bool, str]:
    import importlib.util

    if importlib.util.find_spec("tensorflow_model_optimization") is None:
        return False, "tensorflow-model-optimization is not installed (pip install tensorflow-model-optimization)"
    return True, ""


@register_technique("tf_prune", framework=TF, runtime="keras", finish="tflite_fp32", order=40, needs_data=True, settings=PruneSettings,
                    available=_available,
                    description="TF-MOT magnitude pruning, polynomial schedule (default 0.5 -> 0.8), fine-tune, strip (then plain LiteRT)")
def apply(ctx: TechniqueContext) -> Result:
    s: PruneSettings = ctx.settings
    ctx.tf  # TensorFlow first, quietly, before TF-MOT imports it
    import tensorflow_model_optimization as tfmot
    import tf_keras as keras

    keras.utils.set_random_seed(ctx.seed)
    model = ctx.keras_model()  # a fresh copy; the baseline file is never touched
    total = steps(ctx, s.epochs, s.batch_size, s.max_train_frames)
    # the last mask update must land on end_step so the final sparsity is reached
    frequency = max(1, min(s.frequency, total - 1)) if total > 1 else 1
    end_step = max(0, ((total - 1) // frequency) * frequency)
    schedule = tfmot.sparsity.keras.PolynomialDecay(initial_sparsity=s.initial_sparsity,
                                                    final_sparsity=s.final_sparsity, begin_step=0,
                                                    end_step=end_step, frequency=frequency)
    pruned = tfmot.sparsity.keras.prune_low_magnitude(model, pruning_schedule=schedule)
    fit = fine_tune(ctx, pruned, epochs=s.epochs, batch_size=s.batch_size, learning_rate=s.learning_rate, augment=s.augment,
                    max_train_frames=s.max_train_frames, callbacks=[tfmot.sparsity.keras.UpdatePruningStep()])
    stripped = tfmot.sparsity.keras.strip_pruning(pruned)
    ks = kernels(stripped)
    total_w = sum(k.size for k in ks.values())
    return save_keras(ctx, stripped, {
        **fit, "sparsity_per_layer": {name: float(np.mean(k == 0.0)) for name, k in ks.items()},
        "sparsity_overall": sum(int(np.sum(k == 0)) for k in ks.values()) / total_w if total_w else 0.0,
        "schedule_end_step": int(end_step), "schedule_frequency": int(frequency),
        "tensorflow_model_optimization": tfmot_version(),
        "unique_values_per_layer": {name: int(np.unique(k).size) for name, k in ks.items()},
    })
