"""What a framework must provide to be trained by the shared loop (one module per framework)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


class TrainBackend:
    framework = "?"

    def __init__(self, model: str, seed: int, learning_rate: float, threads: int):
        self.model_name, self.seed, self.learning_rate, self.threads = model, seed, learning_rate, threads

    def train_step(self, x: np.ndarray, y: np.ndarray) -> float:
        """One optimizer step on a uint8 batch; returns the batch loss (MSE, normalized labels)."""
        raise NotImplementedError

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Normalized (v, w) for a uint8 batch, no gradient."""
        raise NotImplementedError

    def get_state(self):
        """A copy of the weights (kept in memory for the best epoch)."""
        raise NotImplementedError

    def set_state(self, state) -> None:
        raise NotImplementedError

    def num_params(self) -> int:
        raise NotImplementedError

    def save(self, folder: Path, meta: dict) -> list[str]:
        """Write the model in the framework's native formats into `folder`; returns file names."""
        raise NotImplementedError


def make_backend(framework: str, **kwargs) -> TrainBackend:
    if framework == "torch":
        from pilotopt.train.torch_backend import TorchBackend  # a subclass of TrainBackend: imports this module

        return TorchBackend(**kwargs)
    from pilotopt.train.tf_backend import KerasBackend  # a subclass of TrainBackend: imports this module

    return KerasBackend(**kwargs)
