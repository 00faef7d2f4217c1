"""ExecuTorch predictor for .pte programs lowered to the XNNPACK delegate (int8 or fp32 kernels).

The program has a fixed batch (1: what a car runs); larger batches are run frame by frame. XNNPACK's
thread pool is set to the run's thread count, as every other runtime's."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np

from pilotopt.frameworks import import_torch, require_package
from pilotopt.runtimes import register_runtime
from pilotopt.runtimes.base import CheckedPredictor, load_failed, require_file, sequence_length_of


@contextlib.contextmanager
def _quiet_stderr():
    """ExecuTorch's C++ loader logs CPU probing lines to fd 2 that a user cannot act on."""
    if os.environ.get("PILOTOPT_DEBUG"):
        yield
        return
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


_LOADED = {"any": False}  # a program was loaded in this process: the thread pool is fixed from then on


def _bindings():
    """ExecuTorch's C++ runtime bindings, the extension module behind `executorch.runtime` (which
    calls the same `_load_program`) and `portable_lib` (which re-exports it name for name). Used
    directly because both of those first import `executorch.exir`, the whole compiler, for one
    warning class: 6-7 core-seconds in every process that only runs programs (each drive and
    evaluation worker). torch comes first, as portable_lib does it: the extension resolves
    libtorch's symbols."""
    import_torch()
    from executorch.extension.pybindings import _C

    return _C


def _load_program(path: Path, threads: int | None = None):
    """The program at `path`, verified as `executorch.runtime.Runtime.load_program` verifies it;
    before the first program is loaded the thread pool is set to `threads` (resetting it later,
    under loaded XNNPACK programs, aborts the process)."""
    require_package("executorch")
    with _quiet_stderr():
        bindings = _bindings()
        if threads and not _LOADED["any"] and bindings._threadpool_get_thread_count() != int(threads):
            bindings._unsafe_reset_threadpool(int(threads))
        _LOADED["any"] = True
        return bindings._load_program(str(path), enable_etdump=False, debug_buffer_size=0,
                                      program_verification=bindings.Verification.InternalConsistency)


def pool_threads() -> int:
    return int(_bindings()._threadpool_get_thread_count())


@register_runtime("executorch")
class ExecuTorchPredictor(CheckedPredictor):
    runtime = "executorch"

    def __init__(self, path: Path, threads: int | None = None, **_):
        require_package("executorch")
        self.torch = import_torch(threads)
        self.path = require_file(path, (".pte",), "ExecuTorch", "executorch")
        try:
            with _quiet_stderr():
                # the Program owns the memory its Method runs in: keep both alive together
                self.program = _load_program(self.path, threads)
                self.method = self.program.load_method("forward")
                sizes = tuple(int(d) for d in self.program.method_meta("forward").input_tensor_meta(0).sizes())
        except Exception as exc:
            raise load_failed("ExecuTorch", self.path, exc) from None
        self.threads = pool_threads()
        self.fixed_batch = sizes[0]
        self.sample_shape = sizes[1:]
        self.sequence_length = sequence_length_of(self.sample_shape)

    def _run(self, x: np.ndarray) -> np.ndarray:
        out = self.method([self.torch.from_numpy(np.ascontiguousarray(x, np.float32))])
        return out[0].detach().numpy().astype(np.float32, copy=False).reshape(len(x), -1)

    def describe(self) -> dict:
        return {**super().describe(), "delegate": "XNNPACK", "batch": self.fixed_batch, "threads": self.threads}
