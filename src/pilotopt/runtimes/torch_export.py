"""torch.export predictor for .pt2 files (an ExportedProgram saved with torch.export.save; the
exporter gives it a dynamic batch dimension). Runs the program's module() in inference mode."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pilotopt.runtimes import register_runtime
from pilotopt.runtimes._util import load_failed, quiet_loggers, require_file, require_package, sequence_length_of
from pilotopt.runtimes.base import CheckedPredictor




def _register_quant_ops() -> None:
    """Int8 programs from PT2E call torch.ops.quantized_decomposed.*, which torch defines only once
    its decomposed-quantization library is imported (torchao does that); without it they fail to
    deserialize. The import is cheap and needs no torchao."""
    try:
        import torch.ao.quantization.fx._decomposed  # noqa: F401
    except Exception:  # noqa: BLE001 - a torch without it: plain programs still load
        pass


def _input_shape(program) -> tuple[int | None, ...]:
    """The first user input's shape, symbolic sizes (the dynamic batch) -> None."""
    name = program.graph_signature.user_inputs[0]
    for node in program.graph.nodes:
        if node.op == "placeholder" and node.name == name:
            val = node.meta.get("val")
            if val is None:
                break
            return tuple(d if isinstance(d, int) else None for d in tuple(val.shape))
    return ()


@register_runtime("torch_export")
class TorchExportPredictor(CheckedPredictor):
    runtime = "torch_export"

    def __init__(self, path: Path, threads: int | None = None, **_):
        from pilotopt.frameworks import import_torch

        require_package("torch")
        self.torch = torch = import_torch(threads)
        self.path = require_file(path, (".pt2",), "torch.export")
        _register_quant_ops()
        try:
            with quiet_loggers("torch.export", "torch._export"):  # torch logs a traceback before raising
                program = torch.export.load(str(self.path))
            shape = _input_shape(program)
            self.net = program.module()
        except Exception as exc:
            raise load_failed("torch.export", self.path, exc) from None
        self.fixed_batch = shape[0] if shape else None  # None: dynamic batch
        self.sample_shape = shape[1:]
        self.sequence_length = sequence_length_of(self.sample_shape) if self.sample_shape else 1

    def _run(self, x: np.ndarray) -> np.ndarray:
        with self.torch.inference_mode():
            return self.net(self.torch.from_numpy(x)).numpy().astype(np.float32, copy=False).reshape(len(x), -1)

