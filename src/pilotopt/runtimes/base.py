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


class CheckedPredictor(Predictor):
    """A predictor over a runtime session: checks frames against the model's input shape (one-line
    error naming both) and splits batches for fixed-batch models; subclasses implement `_run`."""

    sample_shape: tuple | None = None  # per-sample input shape the model expects
    fixed_batch: int | None = None  # the only batch size the model accepts, if any
    path = None

    def _run(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def predict(self, x: np.ndarray) -> np.ndarray:
        from pilotopt.runtimes._util import check_frames, run_in_chunks

        if self.sample_shape:
            x = check_frames(x, self.sample_shape, self.path)
        else:
            x = np.ascontiguousarray(x, np.float32)
        if len(x) == 0:
            return np.zeros((0, 2), np.float32)
        if self.fixed_batch and len(x) != self.fixed_batch:
            return run_in_chunks(self._run, x, self.fixed_batch)
        return self._run(x)
