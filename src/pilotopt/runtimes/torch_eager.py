"""PyTorch eager (our checkpoint: architecture name + state dict) and TorchScript predictors."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pilotopt.errors import BadInputError
from pilotopt.runtimes import register_runtime
from pilotopt.runtimes.base import Predictor


def _is_checkpoint(path: Path) -> bool:
    return path.is_file() and path.suffix == ".pt" and not path.name.endswith(".torchscript.pt")


def _is_torchscript(path: Path) -> bool:
    return path.is_file() and path.name.endswith(".torchscript.pt")


def _torch(threads):
    from pilotopt.frameworks import import_torch

    return import_torch(threads)


@register_runtime("torch", detect=_is_checkpoint)
class TorchPredictor(Predictor):
    runtime = "torch"

    def __init__(self, path: Path, threads: int | None = None):
        torch = self.torch = _torch(threads)
        from pilotopt.models import build_torch, get_model_spec

        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
            name = ckpt["model"]
            self.net = build_torch(name, seed=0)
            self.net.load_state_dict(ckpt["state_dict"])
        except BadInputError:
            raise
        except Exception as exc:  # truncated file, wrong format, mismatched weights
            raise BadInputError(f"cannot load PyTorch checkpoint '{path}': {type(exc).__name__}: "
                                f"{str(exc).splitlines()[0][:200]}") from None
        self.net.eval()
        self.model = name
        self.sequence_length = get_model_spec(name).sequence_length

    def predict(self, x: np.ndarray) -> np.ndarray:
        with self.torch.inference_mode():
            return self.net(self.torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))).numpy()

    def describe(self) -> dict:
        return {**super().describe(), "model": self.model}


@register_runtime("torchscript", detect=_is_torchscript)
class TorchScriptPredictor(Predictor):
    runtime = "torchscript"

    def __init__(self, path: Path, threads: int | None = None):
        torch = self.torch = _torch(threads)
        try:
            self.net = torch.jit.load(str(path), map_location="cpu")
        except Exception as exc:
            raise BadInputError(f"cannot load TorchScript model '{path}': {type(exc).__name__}") from None
        self.net.eval()

    def predict(self, x: np.ndarray) -> np.ndarray:
        with self.torch.inference_mode():
            return self.net(self.torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))).numpy()
