"""`tf_cluster`: TF-MOT weight clustering (cluster_weights, 16 clusters, k-means++ centroid
initialization) of Conv2D/Dense kernels, a short fine-tune on the TRAINING split, strip_clustering,
plain LiteRT conversion. Layers with fewer kernel weights than clusters are skipped (k-means++
cannot place more centroids than points); the record lists clustered and skipped layers and the
unique values per clustered kernel."""

from __future__ import annotations

from dataclasses import dataclass

from pilotopt.techniques._collab import cluster
from pilotopt.techniques._settings import FineTuneSettings, setting
from pilotopt.techniques._core import TF, Result, TechniqueContext, register_technique
from pilotopt.techniques._tfmot_fit import tfmot_version, save_keras
from pilotopt.techniques.tf_prune import _available


@dataclass(frozen=True)
class ClusterSettings(FineTuneSettings):
    epochs: int = 1
    number_of_clusters: int = setting(16, "clusters (k-means++ centroids) per kernel", ge=2)


@register_technique("tf_cluster", framework=TF, runtime="keras", finish="tflite_fp32", order=44, needs_data=True,
                    settings=ClusterSettings, available=_available,
                    description="TF-MOT weight clustering (16, k-means++), fine-tune, strip (then plain LiteRT)")
def apply(ctx: TechniqueContext) -> Result:
    s: ClusterSettings = ctx.settings
    ctx.tf  # noqa: B018 - TensorFlow first, with our thread settings, before TF-MOT imports it
    import tf_keras as keras

    keras.utils.set_random_seed(ctx.seed)
    # the same clustering step as the collaborative techniques, per tensor, no sparsity kept
    stripped, record = cluster(ctx, ctx.keras_model(), s, preserve_sparsity=False, per_channel=False)
    return save_keras(ctx, stripped, {**record, "tensorflow_model_optimization": tfmot_version()})
