"""TF-TRT predictor: a SavedModel converted by TrtGraphConverterV2 (pilotopt.techniques.tftrt), run
through its serving signature. Selected by name only (a TF-TRT SavedModel looks like any other).

UNTESTED WITHOUT A GPU: it needs an NVIDIA GPU and a TensorFlow built with TensorRT (<= 2.17); on
anything else loading raises RuntimeUnavailable with the reason, so the variant is skipped."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pilotopt.errors import BadInputError, RuntimeUnavailable
from pilotopt.runtimes import register_runtime
from pilotopt.runtimes._util import load_failed
from pilotopt.runtimes.base import Predictor


@register_runtime("tftrt")
class TfTrtPredictor(Predictor):  # pragma: no cover - needs an NVIDIA GPU and TF with TensorRT
    runtime = "tftrt"

    def __init__(self, path: Path, threads: int | None = None, **_):
        from pilotopt.techniques.tftrt import available

        ok, why = available()
        if not ok:
            raise RuntimeUnavailable(why)
        from pilotopt.frameworks import import_tf

        tf = self.tf = import_tf(threads)
        path = Path(path)
        if not (path / "saved_model.pb").is_file():
            raise BadInputError(f"'{path}' is not a TF-TRT SavedModel folder (no saved_model.pb)")
        try:
            self._fn = tf.saved_model.load(str(path)).signatures["serving_default"]
        except Exception as exc:
            raise load_failed("TF-TRT", path, exc) from None
        spec = list(self._fn.structured_input_signature[1].values())[0]
        self.sequence_length = int(spec.shape[1]) if len(spec.shape) == 5 else 1

    def predict(self, x: np.ndarray) -> np.ndarray:
        out = self._fn(self.tf.constant(np.ascontiguousarray(x, dtype=np.float32)))
        return np.asarray(next(iter(out.values())), dtype=np.float32).reshape(len(x), -1)
