"""`tf_cqat`: cluster-preserving QAT (TF-MOT collaborative optimization): k-means++ clustering of
Conv2D/Dense kernels into 8 clusters per output channel (cluster_per_channel=True, preserve_sparsity=
False; layers with fewer weights than clusters are skipped), fine-tune, strip, then QAT with
Default8BitClusterPreserveQuantizeScheme(preserve_sparsity=False), a short fine-tune, int8 LiteRT."""

from __future__ import annotations

from pilotopt.techniques import _collab
from pilotopt.techniques._core import TF, Result, TechniqueContext, register_technique
from pilotopt.techniques.tf_prune import _available

CqatSettings = _collab.CollabSettings


@register_technique("tf_cqat", framework=TF, runtime="litert", order=46, needs_data=True, settings=CqatSettings,
                    available=_available,
                    description="TF-MOT clustering (8 per channel, k-means++) + cluster-preserving QAT, LiteRT int8")
def apply(ctx: TechniqueContext) -> Result:
    s = ctx.settings
    ctx.tf  # noqa: B018
    import tensorflow_model_optimization as tfmot
    import tf_keras as keras

    keras.utils.set_random_seed(ctx.seed)
    clustered, rec = _collab.cluster(ctx, ctx.keras_model(), s, preserve_sparsity=False,
                                     per_channel=s.cluster_per_channel)
    scheme = tfmot.experimental.combine.Default8BitClusterPreserveQuantizeScheme(preserve_sparsity=False)
    qat, qrec = _collab.preserving_qat(ctx, clustered, scheme, s)
    return _collab.to_int8(ctx, qat, s, {**rec, **qrec})
