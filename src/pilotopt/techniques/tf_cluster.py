"""`tf_cluster`: TF-MOT weight clustering (cluster_weights, 16 clusters, k-means++ centroid
initialization) of Conv2D/Dense kernels, a short fine-tune on the TRAINING split, strip_clustering,
plain LiteRT conversion. Layers with fewer kernel weights than clusters are skipped (k-means++
cannot place more centroids than points); the record lists clustered and skipped layers and the
unique values per clustered kernel."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pilotopt.errors import BadInputError
from pilotopt.techniques import _tflite
from pilotopt.techniques._core import TF, Result, TechniqueContext, register_technique
from pilotopt.techniques._tfmot_fit import fine_tune, kernels, tfmot_version
from pilotopt.techniques.tf_prune import _available


@dataclass(frozen=True)
class ClusterSettings:
    number_of_clusters: int = 16
    epochs: int = 1
    batch_size: int = 64
    learning_rate: float = 1e-4
    max_train_frames: int = 0  # 0: the whole training split

    def __post_init__(self):
        for key in ("number_of_clusters", "epochs", "batch_size"):
            if getattr(self, key) < 1:
                raise BadInputError(f"{key} must be >= 1, got {getattr(self, key)}")
        if self.number_of_clusters < 2:
            raise BadInputError(f"number_of_clusters must be >= 2, got {self.number_of_clusters}")
        if self.learning_rate <= 0:
            raise BadInputError(f"learning_rate must be > 0, got {self.learning_rate}")


@register_technique("tf_cluster", framework=TF, runtime="litert", order=44, needs_data=True,
                    settings=ClusterSettings, available=_available,
                    description="TF-MOT weight clustering (16, k-means++), fine-tune, strip, LiteRT")
def apply(ctx: TechniqueContext) -> Result:
    s: ClusterSettings = ctx.settings
    ctx.tf  # noqa: B018 - TensorFlow first, with our thread settings, before TF-MOT imports it
    import tensorflow_model_optimization as tfmot
    import tf_keras as keras

    keras.utils.set_random_seed(ctx.seed)
    c = tfmot.clustering.keras
    model = ctx.keras_model()
    clustered_names, skipped = [], []

    def wrap(layer):
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)):
            size = int(np.prod(layer.kernel.shape))
            if size < s.number_of_clusters:
                skipped.append({"layer": layer.name, "weights": size,
                                "reason": f"fewer kernel weights ({size}) than clusters ({s.number_of_clusters})"})
                return layer
            clustered_names.append(layer.name)
            return c.cluster_weights(layer, number_of_clusters=s.number_of_clusters,
                                     cluster_centroids_init=c.CentroidInitialization.KMEANS_PLUS_PLUS)
        return layer

    clustered = keras.models.clone_model(model, clone_function=wrap)
    fit = fine_tune(ctx, clustered, epochs=s.epochs, batch_size=s.batch_size, learning_rate=s.learning_rate,
                    max_train_frames=s.max_train_frames)
    stripped = c.strip_clustering(clustered)
    ks = {n: k for n, k in kernels(stripped).items() if n in clustered_names}
    data, details = _tflite.convert(ctx, model=stripped)
    return _tflite.write(ctx, data, {
        **details, **fit, "number_of_clusters": s.number_of_clusters, "centroid_init": "kmeans_plus_plus",
        "clustered_layers": clustered_names, "skipped_layers": skipped,
        "unique_values_per_layer": {n: int(np.unique(k).size) for n, k in ks.items()},
        "tensorflow_model_optimization": tfmot_version(),
    })
