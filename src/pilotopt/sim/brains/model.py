"""A trained model as a simulator brain: the PilotNet view in, the predictor's normalized (v, w)
mapped back to physical units. Recurrent models get the last T frames."""

from __future__ import annotations

import time
from collections import deque

import numpy as np

from pilotopt.preprocess import denormalize_labels
from pilotopt.runtimes.base import Predictor
from pilotopt.sim.brains.base import Brain
from pilotopt.sim.camera import PilotNetView


class ModelBrain(Brain):
    name = "model"

    def __init__(self, predictor: Predictor, label: str | None = None):
        super().__init__()
        self.predictor = predictor
        self.view = PilotNetView()
        self.label = label or predictor.runtime
        self.history: deque = deque(maxlen=max(1, predictor.sequence_length))

    def reset(self, sim) -> None:
        self.history.clear()

    def step(self, obs: np.ndarray) -> tuple[float, float]:
        t = self.predictor.sequence_length
        if t > 1:
            if not self.history:
                self.history.extend([obs] * t)
            self.history.append(obs)
            batch = np.stack(self.history)[None].astype(np.float32)
        else:
            batch = obs[None].astype(np.float32)
        t0 = time.perf_counter()
        y = self.predictor.predict(batch)
        self.last_inference_s = time.perf_counter() - t0
        v, w = denormalize_labels(np.asarray(y, dtype=np.float64).reshape(-1, 2)[0])
        return float(v), float(w)

    def describe(self) -> dict:
        return {"name": self.label, "view": self.view.name, **self.predictor.describe()}
