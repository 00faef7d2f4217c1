"""The predictor interface shared by every runtime, the checks every runtime module loads and runs
its model with, and a predictor seen through its input contract (ContractPredictor: uint8 images
of the contract's geometry in, pilotopt-normalized (v, w) out, whatever the model's own layout,
scaling and output units)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from pilotopt.artifacts import detect_kind, fmt_shape
from pilotopt.contracts import InputContract
from pilotopt.errors import BadInputError, one_line


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
        if self.sample_shape:
            x = check_frames(x, self.sample_shape, self.path)
        else:
            x = np.ascontiguousarray(x, np.float32)
        if len(x) == 0:
            return np.zeros((0, 2), np.float32)
        if self.fixed_batch and len(x) != self.fixed_batch:
            return run_in_chunks(self._run, x, self.fixed_batch)
        return self._run(x)


class ContractPredictor(Predictor):
    """`raw` (a runtime's predictor of the model's own input) fed and read through `contract`."""

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


def load_failed(kind: str, path: Path, exc: BaseException) -> BadInputError:
    return BadInputError(f"cannot load {kind} model '{path}': {one_line(exc, limit=200)}; "
                         "re-export it (the file is truncated, corrupt or not this format)")


def require_file(path: Path, suffixes: Sequence[str], kind: str, runtime: str | None = None) -> Path:
    """`path` if it is a file of this runtime: by its suffix, or by its content (pilotopt.artifacts)
    whatever it is called."""
    path = Path(path)
    if not path.is_file():
        raise BadInputError(f"{kind} model '{path}' is not a file; pass the exported {'/'.join(suffixes)} file")
    if not any(path.name.endswith(s) for s in suffixes):
        detected = detect_kind(path) if runtime else None
        if detected is None or detected.runtime != runtime:
            raise BadInputError(f"'{path}' is not a {kind} model (expected {' or '.join(suffixes)})")
    return path


def check_frames(x, sample_shape: Sequence[int | None], path: Path) -> np.ndarray:
    """Frames as C-contiguous float32 of shape (N, *sample_shape) (None = any size), or
    BadInputError naming the expected and the actual shape."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    ok = x.ndim == len(sample_shape) + 1 and all(
        d is None or d == a for d, a in zip(sample_shape, x.shape[1:]))
    if not ok:
        raise BadInputError(f"model '{path}' expects input {fmt_shape((None, *sample_shape))} but got "
                            f"{tuple(x.shape)}; preprocess frames to the model's input size")
    return x


def sequence_length_of(sample_shape: Sequence[int | None]) -> int:
    """(T, H, W, C) -> T for recurrent models, 1 for frame models."""
    return int(sample_shape[0] or 1) if len(sample_shape) == 4 else 1


def run_in_chunks(run, x: np.ndarray, batch: int) -> np.ndarray:
    """Run a fixed-batch model over any number of samples (the last chunk is zero-padded)."""
    outs = []
    for start in range(0, len(x), batch):
        chunk = x[start:start + batch]
        n = len(chunk)
        if n < batch:
            chunk = np.concatenate([chunk, np.zeros((batch - n, *x.shape[1:]), dtype=x.dtype)])
        outs.append(run(chunk)[:n])
    return np.concatenate(outs) if outs else np.zeros((0, 2), np.float32)
