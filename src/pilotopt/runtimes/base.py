"""The predictor interface shared by every runtime."""

from __future__ import annotations

import numpy as np


class Predictor:
    """Input: uint8-valued frames (N, 66, 200, 3), or (N, T, 66, 200, 3) for recurrent models;
    output: float32 (N, 2) normalized (v, w)."""

    runtime = "?"
    sequence_length = 1

    def predict(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def describe(self) -> dict:
        return {"runtime": self.runtime, "sequence_length": self.sequence_length}
