"""`tf_prune`: TF-MOT magnitude pruning (prune_low_magnitude) of every prunable layer with a
PolynomialDecay schedule [0.5 -> 0.8 sparsity], a short fine-tune on the TRAINING split,
strip_pruning, then plain LiteRT conversion. The record holds the sparsity reached per layer."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pilotopt.errors import BadInputError
from pilotopt.techniques import _tflite
from pilotopt.techniques._core import TF, Result, TechniqueContext, register_technique


@dataclass(frozen=True)
class PruneSettings:
    initial_sparsity: float = 0.5
    final_sparsity: float = 0.8
    epochs: int = 2  # fine-tuning epochs over the training split
    batch_size: int = 64
    learning_rate: float = 1e-4
    frequency: int = 10  # steps between mask updates
    max_train_frames: int = 0  # 0: the whole training split

    def __post_init__(self):
        if not 0.0 <= self.initial_sparsity <= self.final_sparsity < 1.0:
            raise BadInputError("need 0 <= initial_sparsity <= final_sparsity < 1, got "
                                f"{self.initial_sparsity} -> {self.final_sparsity}")
        for key in ("epochs", "batch_size", "frequency"):
            if getattr(self, key) < 1:
                raise BadInputError(f"{key} must be >= 1, got {getattr(self, key)}")
        if self.learning_rate <= 0:
            raise BadInputError(f"learning_rate must be > 0, got {self.learning_rate}")


def _available() -> tuple[bool, str]:
    import importlib.util

    if importlib.util.find_spec("tensorflow_model_optimization") is None:
        return False, "tensorflow-model-optimization is not installed (pip install tensorflow-model-optimization)"
    return True, ""


def layer_sparsity(model) -> dict[str, float]:
    """Share of exact zeros in each layer's kernel (layers with a kernel only)."""
    out = {}
    for layer in model.layers:
        kernel = getattr(layer, "kernel", None)
        if kernel is not None:
            w = np.asarray(kernel.numpy())
            out[layer.name] = float(np.mean(w == 0.0))
    return out


@register_technique("tf_prune", framework=TF, runtime="litert", order=40, needs_data=True, settings=PruneSettings,
                    available=_available,
                    description="TF-MOT magnitude pruning 0.5 -> 0.8 (polynomial), fine-tune, strip, LiteRT")
def apply(ctx: TechniqueContext) -> Result:
    s: PruneSettings = ctx.settings
    ctx.tf  # TensorFlow first, quietly, before TF-MOT imports it
    import tensorflow_model_optimization as tfmot
    import tf_keras as keras

    keras.utils.set_random_seed(ctx.seed)
    model = ctx.keras_model()  # a fresh copy; the baseline file is never touched
    split = ctx.train
    n = len(split) if s.max_train_frames <= 0 else min(len(split), s.max_train_frames)
    steps_per_epoch = max(1, math.ceil(n / s.batch_size))
    total = steps_per_epoch * s.epochs
    # the last mask update must land on end_step so the final sparsity is reached
    frequency = max(1, min(s.frequency, total - 1)) if total > 1 else 1
    end_step = max(0, ((total - 1) // frequency) * frequency)
    schedule = tfmot.sparsity.keras.PolynomialDecay(initial_sparsity=s.initial_sparsity,
                                                    final_sparsity=s.final_sparsity, begin_step=0,
                                                    end_step=end_step, frequency=frequency)
    pruned = tfmot.sparsity.keras.prune_low_magnitude(model, pruning_schedule=schedule)
    pruned.compile(optimizer=keras.optimizers.Adam(s.learning_rate), loss="mse")

    rng = np.random.default_rng(ctx.seed)
    pool = np.sort(rng.permutation(len(split))[:n])

    def batches():
        epoch = 0
        while True:
            order = np.random.default_rng([ctx.seed, epoch]).permutation(pool)
            for i in range(0, len(order), s.batch_size):
                x, y = split.batch(np.sort(order[i: i + s.batch_size]))
                yield x.astype(np.float32), y.astype(np.float32)
            epoch += 1

    history = pruned.fit(batches(), steps_per_epoch=steps_per_epoch, epochs=s.epochs, verbose=0,
                         callbacks=[tfmot.sparsity.keras.UpdatePruningStep()])
    stripped = tfmot.sparsity.keras.strip_pruning(pruned)
    sparsity = layer_sparsity(stripped)
    data, details = _tflite.convert(ctx, model=stripped)
    total_w = sum(int(np.prod(l.kernel.shape)) for l in stripped.layers if getattr(l, "kernel", None) is not None)
    zeros = sum(int(np.sum(l.kernel.numpy() == 0)) for l in stripped.layers if getattr(l, "kernel", None) is not None)
    return _tflite.write(ctx, data, {
        **details, "sparsity_per_layer": sparsity, "sparsity_overall": zeros / total_w if total_w else 0.0,
        "fine_tune_frames": int(n), "fine_tune_steps": int(total), "schedule_end_step": int(end_step),
        "schedule_frequency": int(frequency), "final_loss": float(history.history["loss"][-1]),
        "tensorflow_model_optimization": tfmot.__version__ if hasattr(tfmot, "__version__") else None,
        "unique_values_per_layer": {l.name: int(np.unique(l.kernel.numpy()).size) for l in stripped.layers
                                    if getattr(l, "kernel", None) is not None},
    })
