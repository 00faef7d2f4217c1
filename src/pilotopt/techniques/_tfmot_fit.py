"""Shared by the TF-MOT techniques: a short, seeded fine-tune of a wrapped Keras model on the
TRAINING split (the same batching as tf_prune), and kernel statistics of the stripped model."""

from __future__ import annotations

import math

import numpy as np

from pilotopt.techniques._batches import training_batch
from pilotopt.techniques._core import Result


def fine_tune(ctx, model, *, epochs: int, batch_size: int, learning_rate: float, max_train_frames: int = 0,
              callbacks=None, augment: str = "none") -> dict:
    """Compile `model` with Adam/MSE and fit it on the training split; returns what the record needs."""
    import tf_keras as keras

    split = ctx.train
    n = len(split) if max_train_frames <= 0 else min(len(split), max_train_frames)
    steps_per_epoch = max(1, math.ceil(n / batch_size))
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="mse")
    pool = np.sort(np.random.default_rng(ctx.seed).permutation(len(split))[:n])

    def batches():
        epoch = 0
        while True:
            order = np.random.default_rng([ctx.seed, epoch]).permutation(pool)
            for i in range(0, len(order), batch_size):
                x, y = training_batch(ctx, augment, epoch, np.sort(order[i: i + batch_size]))
                yield x.astype(np.float32), y.astype(np.float32)
            epoch += 1

    history = model.fit(batches(), steps_per_epoch=steps_per_epoch, epochs=epochs, verbose=0,
                        callbacks=list(callbacks or []))
    return {"fine_tune_frames": int(n), "fine_tune_steps": int(steps_per_epoch * epochs),
            "final_loss": float(history.history["loss"][-1])}


def steps(ctx, epochs: int, batch_size: int, max_train_frames: int = 0) -> int:
    n = len(ctx.train) if max_train_frames <= 0 else min(len(ctx.train), max_train_frames)
    return max(1, math.ceil(n / batch_size)) * epochs


def kernels(model) -> dict[str, np.ndarray]:
    """Each layer's kernel (layers with a kernel only)."""
    return {l.name: np.asarray(l.kernel.numpy()) for l in model.layers if getattr(l, "kernel", None) is not None}


def tfmot_version():
    import tensorflow_model_optimization as tfmot

    return getattr(tfmot, "__version__", None)


KERAS_ARTIFACT = "model.h5"


def save_keras(ctx, model, record: dict):
    """The fine-tuned, stripped Keras model as the pass's artifact (.h5, no optimizer state); a chain
    converts it next (alone, the technique ends in its `finish` conversion, plain LiteRT)."""
    model.save(ctx.out / KERAS_ARTIFACT, include_optimizer=False)
    return Result(KERAS_ARTIFACT, record)
