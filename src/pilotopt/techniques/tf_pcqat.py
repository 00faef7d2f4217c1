"""`tf_pcqat`: sparsity- and cluster-preserving QAT (TF-MOT collaborative optimization):
ConstantSparsity(0.5) pruning, fine-tune, strip; sparsity-preserving k-means++ clustering (8 clusters,
preserve_sparsity=True), fine-tune (`cluster_epochs`, default `epochs`), strip; then QAT with
Default8BitClusterPreserveQuantizeScheme(preserve_sparsity=True), a short fine-tune, int8 LiteRT."""

from __future__ import annotations

from pilotopt.techniques import _collab
from pilotopt.techniques._core import TF, Result, TechniqueContext, register_technique
from pilotopt.techniques.tf_prune import _available

PcqatSettings = _collab.CollabSettings


@register_technique("tf_pcqat", framework=TF, runtime="litert", order=47, needs_data=True, settings=PcqatSettings,
                    available=_available,
                    description="TF-MOT prune 0.5 + sparsity-preserving clustering (8) + PCQAT, LiteRT int8")
def apply(ctx: TechniqueContext) -> Result:
    s = ctx.settings
    ctx.tf  # noqa: B018
    import tensorflow_model_optimization as tfmot
    import tf_keras as keras

    keras.utils.set_random_seed(ctx.seed)
    pruned, prec = _collab.prune(ctx, ctx.keras_model(), s)
    clustered, crec = _collab.cluster(ctx, pruned, s, preserve_sparsity=True, per_channel=False)
    scheme = tfmot.experimental.combine.Default8BitClusterPreserveQuantizeScheme(preserve_sparsity=True)
    qat, qrec = _collab.preserving_qat(ctx, clustered, scheme, s)
    return _collab.to_int8(ctx, qat, s, {**prec, **crec, **qrec, "sparsity": s.sparsity})
