"""A data split seen through an input contract: batches in the model's own input layout and scaling,
labels in its own output space, so fine-tuning and calibration feed a foreign model what it was
trained on (identity for pilotopt's own contract)."""

from __future__ import annotations

import numpy as np


class EncodedSplit:
    def __init__(self, split, contract):
        self.split = split
        self.contract = contract

    def __len__(self) -> int:
        return len(self.split)

    def batch(self, indices, augment=None) -> tuple[np.ndarray, np.ndarray]:
        """(x, y) in the model's space; `augment` (uint8 frames -> uint8 frames) acts on the camera
        images before the contract encodes them, as light and noise act on a camera."""
        x, y = self.split.batch(indices)
        if augment is not None:
            x = augment(x)
        return self.contract.encode(x), self.contract.encode_labels(y)

    def __getattr__(self, name):
        if name == "split":
            raise AttributeError(name)
        return getattr(self.split, name)
