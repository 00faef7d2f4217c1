"""Importing the heavy frameworks the same way everywhere: Keras 2 for TF-MOT, fixed thread pools,
an optional package missing as one line, and TensorFlow's start-up chatter (absl lines written
before logging is configured, a cuInit error on machines without a GPU) kept off the user's
terminal."""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import sys
import warnings
from typing import Iterator

from pilotopt.errors import RuntimeUnavailable


def require_package(module: str, pip_name: str | None = None):
    """Import an optional package (a runtime's, a converter's) or raise RuntimeUnavailable naming it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise RuntimeUnavailable(f"{pip_name or module} is not installed; "
                                 f"`pip install {pip_name or module}` to use this runtime") from None


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


@contextlib.contextmanager
def quiet_stderr():
    """Silence the C++ layer's writes to file descriptor 2 (Python errors still propagate)."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real fd 2 (e.g. captured by a test runner)
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def import_tf(threads: int | None = None):
    """TensorFlow with tf.keras = Keras 2 (TF-MOT needs it), thread pools fixed before first use."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    first = "tensorflow" not in sys.modules
    with quiet_stderr() if first and not os.environ.get("PILOTOPT_DEBUG") else contextlib.nullcontext():
        import tensorflow as tf

        if threads:
            try:
                tf.config.threading.set_intra_op_parallelism_threads(threads)
                tf.config.threading.set_inter_op_parallelism_threads(1)
            except RuntimeError:  # already initialized in this process
                pass
        if first:
            tf.constant(0.0) + 1.0  # initialize devices now, while quiet
    return tf


def import_torch(threads: int | None = None):
    """torch with its thread pool fixed (library noise is quieted on `import pilotopt`)."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    return torch


@contextlib.contextmanager
def quiet_conversion() -> Iterator[None]:
    """Converters chatter: C++ log lines on fd 2, Python warnings, progress loggers."""
    ctx = contextlib.nullcontext() if os.environ.get("PILOTOPT_DEBUG") else quiet_stderr()
    with ctx, warnings.catch_warnings(), quiet_loggers("torch.onnx", "torch.export", "torch._export",
                                                        "torch._dynamo", "onnxscript", "absl", "tensorflow",
                                                        level=logging.ERROR):
        warnings.simplefilter("ignore")
        yield
