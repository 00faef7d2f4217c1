"""Helpers shared by the predictors: input checks, short error messages, quiet loading."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from pilotopt.errors import BadInputError, RuntimeUnavailable, one_line


short_error = one_line  # the old name of pilotopt.errors.one_line


def load_failed(kind: str, path: Path, exc: BaseException) -> BadInputError:
    return BadInputError(f"cannot load {kind} model '{path}': {one_line(exc, limit=200)}; "
                         "re-export it (the file is truncated, corrupt or not this format)")


def require_package(module: str, pip_name: str | None = None):
    """Import an optional runtime package or raise RuntimeUnavailable naming it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise RuntimeUnavailable(f"{pip_name or module} is not installed; "
                                 f"`pip install {pip_name or module}` to use this runtime") from None


def require_file(path: Path, suffixes: Sequence[str], kind: str, runtime: str | None = None) -> Path:
    """`path` if it is a file of this runtime: by its suffix, or by its content (pilotopt.artifacts)
    whatever it is called."""
    path = Path(path)
    if not path.is_file():
        raise BadInputError(f"{kind} model '{path}' is not a file; pass the exported {'/'.join(suffixes)} file")
    if not any(path.name.endswith(s) for s in suffixes):
        from pilotopt.artifacts import detect_kind

        detected = detect_kind(path) if runtime else None
        if detected is None or detected.runtime != runtime:
            raise BadInputError(f"'{path}' is not a {kind} model (expected {' or '.join(suffixes)})")
    return path


def fmt_shape(shape: Sequence[int | None]) -> str:
    return "(" + ", ".join("N" if i == 0 else ("?" if d is None else str(d)) for i, d in enumerate(shape)) + ")"


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


@contextlib.contextmanager
def quiet_loggers(*names: str, level: int = logging.CRITICAL) -> Iterator[None]:
    """Raise the level of Python loggers (torch logs whole tracebacks as warnings on some failures)."""
    saved = [(logging.getLogger(n), logging.getLogger(n).level) for n in names]
    for logger, _ in saved:
        logger.setLevel(level)
    try:
        yield
    finally:
        for logger, old in saved:
            logger.setLevel(old)


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
