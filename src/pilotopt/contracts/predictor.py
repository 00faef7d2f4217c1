"""A predictor seen through its input contract: uint8 images of the contract's geometry in,
pilotopt-normalized (v, w) out, whatever the model's own layout, scaling and output units."""

from __future__ import annotations

import numpy as np

from pilotopt.contracts.contract import InputContract
from pilotopt.runtimes.base import Predictor

RANGE_MARGIN = 0.05  # normalized outputs this far outside [0, 1] are out of range


class ContractPredictor(Predictor):
    def __init__(self, raw: Predictor, contract: InputContract):
        self.raw = raw
        self.contract = contract
        self.runtime = raw.runtime
        self.sequence_length = int(getattr(raw, "sequence_length", 1) or 1)

    def predict(self, images: np.ndarray) -> np.ndarray:
        return self.contract.decode(self.raw.predict(self.contract.encode(images)))

    def describe(self) -> dict:
        return {**self.raw.describe(), "input_contract": self.contract.name}

    def __getattr__(self, name):  # net, model, path ... of the wrapped predictor
        if name == "raw":
            raise AttributeError(name)
        return getattr(self.raw, name)


def out_of_range_share(y: np.ndarray, margin: float = RANGE_MARGIN) -> float:
    """Share of predictions with v or w outside [0, 1] (+- margin) in pilotopt's normalized space: a
    model fed with the wrong contract (wrong scaling, wrong output units) shows up here."""
    y = np.asarray(y, dtype=np.float64).reshape(-1, 2)
    if len(y) == 0:
        return 0.0
    bad = (y < -margin) | (y > 1 + margin) | ~np.isfinite(y)
    return float(bad.any(axis=1).mean())
