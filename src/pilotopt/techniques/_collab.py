"""Shared by the TF-MOT collaborative-optimization techniques (tf_pqat, tf_cqat, tf_pcqat):
prune / cluster Conv2D+Dense kernels, fine-tune, strip, then quantization-aware training with a
preserving scheme and an int8 LiteRT conversion (Optimize.DEFAULT + representative training frames)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pilotopt.errors import one_line
from pilotopt.techniques import _tflite
from pilotopt.techniques._settings import Settings, augmentation, calibration, setting
from pilotopt.techniques._tfmot_fit import fine_tune, kernels, tfmot_version


@dataclass(frozen=True)
class CollabSettings(Settings):
    sparsity: float = setting(0.5, "ConstantSparsity target of the pruning stages", ge=0, lt=1)
    number_of_clusters: int = setting(8, "clusters per kernel (or channel) of the clustering stages", ge=2)
    cluster_per_channel: bool = setting(True, "tf_cqat: cluster each output channel on its own")
    epochs: int = setting(1, "fine-tune epochs of the prune / cluster stage", ge=1)
    # the prune stage makes the sparsity the model must recover from, the cluster stage keeps its zeros
    cluster_epochs: int = setting(0, "tf_pcqat: epochs of the sparsity-preserving cluster stage after "
                                     "its prune stage (0: epochs)", ge=0)
    qat_epochs: int = setting(1, "fine-tune epochs of the preserving QAT stage", ge=1)
    batch_size: int = setting(64, "fine-tuning batch size", ge=1)
    learning_rate: float = setting(1e-4, "Adam learning rate of the prune / cluster stages", gt=0)
    qat_learning_rate: float = setting(1e-5, "Adam learning rate of the QAT stage", gt=0)
    max_train_frames: int = setting(0, "training frames each fine-tune uses (0: the whole training split)", ge=0)
    calibration_frames: int = calibration(100, "the int8 conversion after QAT")
    augment: str = augmentation()  # of every stage's fine-tune


def _is_target(layer) -> bool:
    import tf_keras as keras

    return isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense))


def prune(ctx, model, s: CollabSettings) -> tuple:
    """ConstantSparsity(s.sparsity) on Conv2D/Dense, fine-tune, strip; returns (stripped, record)."""
    import tensorflow_model_optimization as tfmot
    import tf_keras as keras

    sp = tfmot.sparsity.keras
    schedule = sp.ConstantSparsity(s.sparsity, begin_step=0, frequency=1)
    names = []

    def wrap(layer):
        if _is_target(layer):
            names.append(layer.name)
            return sp.prune_low_magnitude(layer, pruning_schedule=schedule)
        return layer

    pruned = keras.models.clone_model(model, clone_function=wrap)
    fit = fine_tune(ctx, pruned, epochs=s.epochs, batch_size=s.batch_size, learning_rate=s.learning_rate, augment=s.augment,
                    max_train_frames=s.max_train_frames, callbacks=[sp.UpdatePruningStep()])
    stripped = sp.strip_pruning(pruned)
    ks = {n: k for n, k in kernels(stripped).items() if n in names}
    return stripped, {"pruned_layers": names, "prune_fine_tune": fit,
                      "sparsity_after_prune": {n: float(np.mean(k == 0)) for n, k in ks.items()}}


def cluster(ctx, model, s: CollabSettings, *, preserve_sparsity: bool, per_channel: bool) -> tuple:
    """k-means++ clustering of Conv2D/Dense kernels (skipping those with fewer weights than clusters),
    fine-tune, strip; returns (stripped, record)."""
    import tensorflow_model_optimization as tfmot
    import tf_keras as keras

    c = tfmot.clustering.keras
    names, skipped = [], []
    extra = {"preserve_sparsity": preserve_sparsity}
    if per_channel:
        extra["cluster_per_channel"] = True

    def wrap(layer):
        if _is_target(layer):
            size = int(np.prod(layer.kernel.shape))
            if size < s.number_of_clusters:
                skipped.append({"layer": layer.name, "weights": size,
                                "reason": f"fewer kernel weights ({size}) than clusters ({s.number_of_clusters})"})
                return layer
            names.append(layer.name)
            return c.cluster_weights(layer, number_of_clusters=s.number_of_clusters,
                                     cluster_centroids_init=c.CentroidInitialization.KMEANS_PLUS_PLUS, **extra)
        return layer

    clustered = keras.models.clone_model(model, clone_function=wrap)
    epochs = s.cluster_epochs if preserve_sparsity and s.cluster_epochs else s.epochs
    fit = fine_tune(ctx, clustered, epochs=epochs, batch_size=s.batch_size, learning_rate=s.learning_rate, augment=s.augment,
                    max_train_frames=s.max_train_frames)
    stripped = c.strip_clustering(clustered)
    ks = {n: k for n, k in kernels(stripped).items() if n in names}
    return stripped, {"clustered_layers": names, "skipped_layers": skipped, "cluster_fine_tune": fit,
                      "number_of_clusters": s.number_of_clusters, "centroid_init": "kmeans_plus_plus",
                      "preserve_sparsity": preserve_sparsity,
                      "cluster_per_channel": per_channel,
                      # TF-MOT 0.8.1 clusters per channel only in Conv2D; Dense kernels stay per-tensor
                      "per_channel_layers": [l.name for l in model.layers
                                             if per_channel and l.name in names
                                             and isinstance(l, keras.layers.Conv2D)],
                      "unique_values_per_layer": {n: int(np.unique(k).size) for n, k in ks.items()}}


def preserving_qat(ctx, model, scheme, s: CollabSettings) -> tuple:
    """quantize_annotate_model + quantize_apply(scheme), fine-tune; falls back to annotating
    Conv2D/Dense only if the whole model is refused. Returns (qat model, record)."""
    import tensorflow_model_optimization as tfmot
    import tf_keras as keras

    q = tfmot.quantization.keras
    annotation, refused = "quantize_annotate_model", None
    try:
        with q.quantize_scope():
            qat = q.quantize_apply(q.quantize_annotate_model(model), scheme)
    except Exception as exc:
        refused = one_line(exc, limit=200)

        def annotate(layer):
            return q.quantize_annotate_layer(layer) if _is_target(layer) else layer

        with q.quantize_scope():
            qat = q.quantize_apply(keras.models.clone_model(model, clone_function=annotate), scheme)
        annotation = "quantize_annotate_layer(Conv2D/Dense) + quantize_apply"
    fit = fine_tune(ctx, qat, epochs=s.qat_epochs, batch_size=s.batch_size, learning_rate=s.qat_learning_rate, augment=s.augment,
                    max_train_frames=s.max_train_frames)
    return qat, {"annotation": annotation, "quantize_annotate_model_refused": refused, "qat_fine_tune": fit,
                 "quantize_scheme": type(scheme).__name__}


def to_int8(ctx, model, s: CollabSettings, record: dict):
    tf = ctx.tf
    gen, n = _tflite.representative_dataset(ctx, s.calibration_frames)

    def configure(conv):
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = gen

    data, details = _tflite.convert(ctx, configure, model=model)

    return _tflite.write(ctx, data, {**details, **record, "quantization": "qat_int8", "calibration_frames": n,
                                     "calibration_from": "train",
                                     "tensorflow_model_optimization": tfmot_version()})
