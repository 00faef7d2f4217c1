"""A trained model as a simulator brain: the view its input contract asks for (crop rows and size)
in, its outputs mapped to physical (v, w) by the contract's output map as the edge package applies
it on the car (unclipped unless the contract asks; the vehicle's physical limits apply after).
Recurrent models get the last T frames. A predictor without a contract is pilotopt's own."""

from __future__ import annotations

import time
import weakref
from collections import deque

import numpy as np

from pilotopt.contracts import RANGE_MARGIN, load_contract
from pilotopt.runtimes.base import ContractPredictor, Predictor
from pilotopt.sim.brains.base import Brain
from pilotopt.sim.camera import PilotNetView


# largest |difference| of a raw output between a frame in a batch and the same frame alone for a
# runtime to be batched (float rounding of batched kernels is ~1e-7; batch-dependent quantization
# is ~1e-2)
BATCH_TOLERANCE = 1e-5
_BATCH_INVARIANT: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # predictor -> verdict


def batch_invariant(model) -> bool | None:
    """Whether `model` (a predictor's raw model) gave the same outputs in a batch as one by one
    when a drive first batched it (None: not checked yet)."""
    return _BATCH_INVARIANT.get(model)


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
        self.steps = self.out_of_range = 0  # the warm-up calls before a run are not counted

    def model_input(self, obs: np.ndarray) -> np.ndarray:
        """The encoded batch of one for `obs` (with the last T frames for a recurrent model)."""
        t = self.predictor.sequence_length
        if t > 1:
            if not self.history:
                self.history.extend([obs] * t)
            self.history.append(obs)
            batch = np.stack(self.history)[None]
        else:
            batch = obs[None]
        return self.predictor.contract.encode(batch)

    def command(self, raw: np.ndarray) -> tuple[float, float]:
        """(v, w) from the model's raw output row, as the edge package maps it on the car."""
        contract = self.predictor.contract
        y = np.asarray(contract.decode(raw), dtype=np.float64).reshape(-1, 2)[0]
        self.steps += 1
        if not (np.all(np.isfinite(y)) and np.all(y >= -RANGE_MARGIN) and np.all(y <= 1 + RANGE_MARGIN)):
            self.out_of_range += 1
        v, w = contract.commands(raw)
        return float(v[0]), float(w[0])

    def step(self, obs: np.ndarray) -> tuple[float, float]:
        x = self.model_input(obs)
        t0 = time.perf_counter()
        raw = self.predictor.raw.predict(x)
        self.last_inference_s = time.perf_counter() - t0
        return self.command(raw)

    @classmethod
    def step_many(cls, brains: list["ModelBrain"], obs: list) -> tuple[list[tuple[float, float]], float | None]:
        """Every car's frame in one model call when the brains share one predictor (one variant)
        and it is batch-invariant: its first batch, with a black and an over-bright frame added, is
        compared with the same frames one by one, and a runtime whose outputs depend on the batch
        (ONNX Runtime's dynamic int8 quantizes activations with the whole batch's range) steps each
        car on its own from then on."""
        model = brains[0].predictor.raw
        if len(brains) == 1 or any(b.predictor.raw is not model for b in brains):
            return super().step_many(brains, obs)
        verdict = _BATCH_INVARIANT.get(model)
        if verdict is False:
            return super().step_many(brains, obs)
        x = np.concatenate([b.model_input(o) for b, o in zip(brains, obs)])
        if verdict is None:  # the cars' frames beside a black and an over-bright one: a batch-wide range shows
            alone = np.concatenate([np.asarray(model.predict(x[i:i + 1])) for i in range(len(x))])
            wide = np.asarray(model.predict(np.concatenate([x, x[:1] * 0, x[:1] * 0 + 4 * np.abs(x).max()])))
            _BATCH_INVARIANT[model] = verdict = bool(np.allclose(wide[:len(x)], alone, rtol=0, atol=BATCH_TOLERANCE))
            if not verdict:
                return [b.command(alone[i:i + 1]) for i, b in enumerate(brains)], None
        t0 = time.perf_counter()
        raw = np.asarray(model.predict(x))
        share = (time.perf_counter() - t0) / len(brains)
        for b in brains:
            b.last_inference_s = share
        return [b.command(raw[i:i + 1]) for i, b in enumerate(brains)], share

    @property
    def out_of_range_share(self) -> float:
        return self.out_of_range / self.steps if self.steps else 0.0

    def describe(self) -> dict:
        return {"name": self.label, "view": self.view.name, **self.predictor.describe(),
                "outputs_out_of_range_share": round(self.out_of_range_share, 4)}
