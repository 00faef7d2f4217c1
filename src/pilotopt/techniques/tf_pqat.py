"""`tf_pqat`: pruning-preserving QAT (TF-MOT collaborative optimization): ConstantSparsity(0.5) on
Conv2D/Dense, fine-tune, strip, then QAT with Default8BitPrunePreserveQuantizeScheme (the zeros stay
zero), a short fine-tune, int8 LiteRT (Optimize.DEFAULT + representative training frames)."""

from __future__ import annotations

from pilotopt.techniques import _collab
from pilotopt.techniques._core import TF, Result, TechniqueContext, register_technique
from pilotopt.techniques.tf_prune import _available

PqatSettings = _collab.CollabSettings


@register_technique("tf_pqat", framework=TF, runtime="litert", order=45, needs_data=True, settings=PqatSettings,
                    available=_available,
                    description="TF-MOT prune 0.5 (constant) + prune-preserving QAT, LiteRT int8")
def apply(ctx: TechniqueContext) -> Result:
    s = ctx.settings
    ctx.tf  # noqa: B018 - TensorFlow first, before TF-MOT imports it
    import tensorflow_model_optimization as tfmot
    import tf_keras as keras

    keras.utils.set_random_seed(ctx.seed)
    pruned, rec = _collab.prune(ctx, ctx.keras_model(), s)
    scheme = tfmot.experimental.combine.Default8BitPrunePreserveQuantizeScheme()
    qat, qrec = _collab.preserving_qat(ctx, pruned, scheme, s)
    return _collab.to_int8(ctx, qat, s, {**rec, **qrec, "sparsity": s.sparsity})
