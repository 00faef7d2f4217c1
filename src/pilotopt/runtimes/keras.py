"""Keras (tf_keras, Keras 2) predictor for .h5 files and SavedModel folders, called through a
compiled tf.function so it is timed fairly against the other runtimes."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pilotopt.errors import BadInputError, one_line
from pilotopt.frameworks import import_tf
from pilotopt.models.keras_input import adapt_keras
from pilotopt.runtimes import register_runtime
from pilotopt.runtimes.base import Predictor


@register_runtime("keras")
class KerasPredictor(Predictor):
    runtime = "keras"

    def __init__(self, path: Path, threads: int | None = None, input_shape: tuple | None = None, **_):
        tf = import_tf(threads)
        import tf_keras as keras

        try:
            self.net = keras.models.load_model(path, compile=False)
        except Exception as exc:
            raise BadInputError(f"cannot load Keras model '{path}': {one_line(exc, limit=200)}") from None
        declared = tuple(self.net.input_shape[1:])
        if input_shape is not None and declared[-3:] != tuple(input_shape)[-3:]:  # a transposed declaration
            target = (*declared[:-3], *tuple(input_shape)[-3:])
            self.net = adapt_keras(self.net, target, fold_input_batchnorm=False, where=f"'{path}'")
        shape = self.net.input_shape
        self.sequence_length = shape[1] if len(shape) == 5 else 1
        self._call = tf.function(lambda x: self.net(x, training=False), reduce_retracing=True)
        self.tf = tf

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self._call(self.tf.convert_to_tensor(np.asarray(x, dtype=np.float32))).numpy()
