"""`tf_prune_2x4`: structured 2:4 sparsity with TF-MOT (prune_low_magnitude with
sparsity_m_by_n=(2, 4) and a ConstantSparsity(0.5) schedule) on every Conv2D and Dense layer:
in each group of 4 consecutive kernel weights along the input-channel axis at least 2 are zero
(TF-MOT pads the input-channel axis to a multiple of 4). Fine-tune on the TRAINING split,
strip_pruning, plain LiteRT conversion. The record lists the pruned layers and checks the pattern."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pilotopt.errors import one_line
from pilotopt.techniques._core import TF, Result, TechniqueContext, register_technique
from pilotopt.techniques._tfmot_fit import fine_tune, kernels, tfmot_version, save_keras
from pilotopt.techniques.tf_prune import MaskUpdateSettings, _available


@dataclass(frozen=True)
class Prune2x4Settings(MaskUpdateSettings):
    """Only the fine-tune and mask-update knobs: the 2:4 pattern fixes the sparsity at 50 %."""


def groups_along_input(kernel: np.ndarray, n: int = 4) -> np.ndarray:
    """The kernel as rows of `n` consecutive weights along the input-channel axis (axis -2 of a
    Conv2D (h, w, in, out) or Dense (in, out) kernel), zero-padded to a multiple of `n`."""
    k = np.moveaxis(np.asarray(kernel), -2, -1)  # input channels last
    k = k.reshape(-1, k.shape[-1])
    pad = (-k.shape[1]) % n
    if pad:
        k = np.concatenate([k, np.zeros((k.shape[0], pad), k.dtype)], axis=1)
    return k.reshape(-1, n)


def is_m_by_n(kernel: np.ndarray, m: int = 2, n: int = 4) -> bool:
    """True when every group of `n` consecutive input-channel weights has at least `m` zeros."""
    return bool(np.all(np.sum(groups_along_input(kernel, n) == 0, axis=1) >= m))


@register_technique("tf_prune_2x4", framework=TF, runtime="keras", finish="tflite_fp32", order=42, needs_data=True,
                    settings=Prune2x4Settings, available=_available,
                    description="TF-MOT 2:4 structured sparsity on Conv2D/Dense, fine-tune, strip (then plain LiteRT)")
def apply(ctx: TechniqueContext) -> Result:
    s: Prune2x4Settings = ctx.settings
    ctx.tf  # noqa: B018 - TensorFlow first, with our thread settings, before TF-MOT imports it
    import tensorflow_model_optimization as tfmot
    import tf_keras as keras

    keras.utils.set_random_seed(ctx.seed)
    model = ctx.keras_model()
    schedule = tfmot.sparsity.keras.ConstantSparsity(0.5, begin_step=0, frequency=s.frequency)
    wrapped, skipped = [], []

    def clone(layer):
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)):
            try:
                out = tfmot.sparsity.keras.prune_low_magnitude(layer, pruning_schedule=schedule,
                                                               sparsity_m_by_n=(2, 4))
                wrapped.append(layer.name)
                return out
            except (ValueError, TypeError) as exc:  # not supported for this layer: keep it dense
                skipped.append({"layer": layer.name, "reason": one_line(exc, limit=200)})
        return layer  # the fresh copy's own layer, weights kept

    pruned = keras.models.clone_model(model, clone_function=clone)
    fit = fine_tune(ctx, pruned, epochs=s.epochs, batch_size=s.batch_size, learning_rate=s.learning_rate, augment=s.augment,
                    max_train_frames=s.max_train_frames, callbacks=[tfmot.sparsity.keras.UpdatePruningStep()])
    stripped = tfmot.sparsity.keras.strip_pruning(pruned)
    ks = {n: k for n, k in kernels(stripped).items() if n in wrapped}
    return save_keras(ctx, stripped, {
        **fit, "sparsity_m_by_n": [2, 4], "pruned_layers": wrapped, "skipped_layers": skipped,
        "sparsity_per_layer": {n: float(np.mean(k == 0)) for n, k in ks.items()},
        "m_by_n_ok_per_layer": {n: is_m_by_n(k) for n, k in ks.items()},
        "tensorflow_model_optimization": tfmot_version(),
    })
