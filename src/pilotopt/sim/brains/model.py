"""A trained model as a simulator brain: the view its input contract asks for (crop rows and size)
in, its outputs mapped to physical (v, w) by the contract's output map as the edge package applies
it on the car (unclipped unless the contract asks; the vehicle's physical limits apply after).
Recurrent models get the last T frames. A predictor without a contract is pilotopt's own."""

from __future__ import annotations

import time
from collections import deque

import numpy as np

from pilotopt.contracts import RANGE_MARGIN, load_contract
from pilotopt.runtimes.base import ContractPredictor, Predictor
from pilotopt.sim.brains.base import Brain
from pilotopt.sim.camera import PilotNetView


class ModelBrain(Brain):
    name = "model"

    def __init__(self, predictor: Predictor, label: str | None = None):
        super().__init__()
        if not isinstance(predictor, ContractPredictor):
            predictor = ContractPredictor(predictor, load_contract(None))
        self.predictor = predictor
        self.view = PilotNetView(geometry=predictor.contract.geometry)
        self.label = label or predictor.runtime
        self.history: deque = deque(maxlen=max(1, predictor.sequence_length))
        self.steps = 0
        self.out_of_range = 0  # normalized outputs outside [0, 1]: a sign of the wrong input contract

    def reset(self, sim) -> None:
        self.history.clear()

    def step(self, obs: np.ndarray) -> tuple[float, float]:
        t = self.predictor.sequence_length
        if t > 1:
            if not self.history:
                self.history.extend([obs] * t)
            self.history.append(obs)
            batch = np.stack(self.history)[None]
        else:
            batch = obs[None]
        contract = self.predictor.contract
        x = contract.encode(batch)
        t0 = time.perf_counter()
        raw = self.predictor.raw.predict(x)
        self.last_inference_s = time.perf_counter() - t0
        y = np.asarray(contract.decode(raw), dtype=np.float64).reshape(-1, 2)[0]
        self.steps += 1
        if not (np.all(np.isfinite(y)) and np.all(y >= -RANGE_MARGIN) and np.all(y <= 1 + RANGE_MARGIN)):
            self.out_of_range += 1
        v, w = contract.commands(raw)
        return float(v[0]), float(w[0])

    @property
    def out_of_range_share(self) -> float:
        return self.out_of_range / self.steps if self.steps else 0.0

    def describe(self) -> dict:
        return {"name": self.label, "view": self.view.name, **self.predictor.describe(),
                "outputs_out_of_range_share": round(self.out_of_range_share, 4)}
