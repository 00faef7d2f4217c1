"""TensorFlow (Keras 2 / tf_keras) training backend: deterministic ops, fixed seed and threads."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pilotopt.frameworks import import_tf
from pilotopt.models import build_keras
from pilotopt.train.backend import TrainBackend

H5 = "model.h5"
SAVED_MODEL = "saved_model"


class KerasBackend(TrainBackend):
    framework = "tf"

    def __init__(self, model: str, seed: int, learning_rate: float, threads: int):
        super().__init__(model, seed, learning_rate, threads)
        tf = import_tf(threads)
        import tf_keras as keras

        keras.utils.set_random_seed(seed)
        tf.config.experimental.enable_op_determinism()
        self.tf, self.keras = tf, keras
        self.net = build_keras(model, seed=seed)
        self.net.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="mse")

    def train_step(self, x, y) -> float:
        return float(self.net.train_on_batch(x.astype(np.float32), y.astype(np.float32)))

    def predict(self, x) -> np.ndarray:
        return np.asarray(self.net(x.astype(np.float32), training=False))

    def get_state(self):
        return [w.copy() for w in self.net.get_weights()]

    def set_state(self, state) -> None:
        self.net.set_weights(state)

    def num_params(self) -> int:
        return int(self.net.count_params())

    def save(self, folder: Path, meta: dict) -> list[str]:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "HDF5 is legacy": kept for the study's tools
            self.net.save(folder / H5, include_optimizer=False)  # deployable: no Adam state
        self.net.save(folder / SAVED_MODEL, save_format="tf", include_optimizer=False)
        return [H5, SAVED_MODEL]
