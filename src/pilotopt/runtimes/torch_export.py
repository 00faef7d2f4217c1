"""torch.export predictor for .pt2 files (an ExportedProgram saved with torch.export.save; the
exporter gives it a dynamic batch dimension). Runs the program's module() in inference mode."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pilotopt.artifacts.kind_torch_export import input_shape, load_program
from pilotopt.frameworks import import_torch, require_package
from pilotopt.runtimes import register_runtime
from pilotopt.runtimes.base import CheckedPredictor, load_failed, require_file, sequence_length_of


@register_runtime("torch_export")
class TorchExportPredictor(CheckedPredictor):
    runtime = "torch_export"

    def __init__(self, path: Path, threads: int | None = None, **_):
        require_package("torch")
        self.torch = import_torch(threads)
        self.path = require_file(path, (".pt2",), "torch.export", "torch_export")
        try:
            program = load_program(self.path)
            shape = input_shape(program)
            self.net = program.module()
        except Exception as exc:
            raise load_failed("torch.export", self.path, exc) from None
        self.fixed_batch = shape[0] if shape else None  # None: dynamic batch
        self.sample_shape = shape[1:]
        self.sequence_length = sequence_length_of(self.sample_shape) if self.sample_shape else 1

    def _run(self, x: np.ndarray) -> np.ndarray:
        with self.torch.inference_mode():
            return self.net(self.torch.from_numpy(x)).numpy().astype(np.float32, copy=False).reshape(len(x), -1)

