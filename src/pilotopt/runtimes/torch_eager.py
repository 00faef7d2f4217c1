"""PyTorch eager (pilotopt's checkpoint, or a bare state dict with its architecture) and TorchScript
predictors."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pilotopt.artifacts import fmt_shape
from pilotopt.artifacts.torch_files import load_archive, state_dict_of
from pilotopt.errors import BadInputError, one_line
from pilotopt.frameworks import import_torch
from pilotopt.models.arch import resolve_arch
from pilotopt.runtimes import register_runtime
from pilotopt.runtimes.base import CheckedPredictor


def _torch(threads):
    return import_torch(threads)


def load_torch_module(path: Path, arch: str | None = None, arch_args: dict | None = None, seed: int = 0):
    """(module in eval mode, architecture name, sequence length) of a checkpoint or a state dict."""
    obj = load_archive(path)
    if isinstance(obj, Exception):
        raise BadInputError(f"cannot load PyTorch file '{path}': {one_line(obj, limit=200)}; "
                            "pass a state dict or checkpoint")
    own = isinstance(obj, dict) and isinstance(obj.get("model"), str) and "state_dict" in obj
    name = arch or (obj["model"] if own else None)
    if name is None:
        raise BadInputError(f"'{path}' is a PyTorch state dict (weights only); pass --arch with its architecture")
    spec = resolve_arch(name, arch_args or {})
    state = obj["state_dict"] if own else state_dict_of(obj)
    if state is None:
        raise BadInputError(f"'{path}' holds no state dict; save torch.save(model.state_dict(), path)")
    net = spec.build(seed)
    missing, unexpected = _load_state(net, state)
    if missing or unexpected:
        raise BadInputError(f"the weights in '{path}' do not fit architecture '{name}' "
                            f"(missing {', '.join(missing[:3]) or 'none'}; unexpected {', '.join(unexpected[:3]) or 'none'}"
                            f"{' ...' if len(missing) > 3 or len(unexpected) > 3 else ''}); pass the --arch it was "
                            "trained with")
    return net.eval(), name, spec.sequence_length, spec


def _load_state(net, state: dict) -> tuple[list[str], list[str]]:
    own = net.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        return missing, unexpected
    bad = [k for k in own if tuple(own[k].shape) != tuple(state[k].shape)]
    if bad:
        return [f"{k} {tuple(own[k].shape)} (file has {tuple(state[k].shape)})" for k in bad], []
    net.load_state_dict(state)
    return [], []


@register_runtime("torch")
class TorchPredictor(CheckedPredictor):
    runtime = "torch"

    def __init__(self, path: Path, threads: int | None = None, arch: str | None = None, arch_args: dict | None = None,
                 **_):
        self.torch = _torch(threads)
        self.path = path
        try:
            self.net, self.model, self.sequence_length, spec = load_torch_module(path, arch, arch_args)
        except BadInputError:
            raise
        except Exception as exc:  # truncated file, wrong format, mismatched weights
            raise BadInputError(f"cannot load PyTorch checkpoint '{path}': {one_line(exc, limit=200)}") from None
        self.sample_shape = tuple(spec.declared_shape) if spec.declared_shape else None

    def _run(self, x: np.ndarray) -> np.ndarray:
        with self.torch.inference_mode():
            return self.net(self.torch.from_numpy(x)).numpy()

    def describe(self) -> dict:
        return {**super().describe(), "model": self.model}


@register_runtime("torchscript")
class TorchScriptPredictor(CheckedPredictor):
    runtime = "torchscript"

    def __init__(self, path: Path, threads: int | None = None, **_):
        torch = self.torch = _torch(threads)
        self.path = path
        try:
            self.net = torch.jit.load(str(path), map_location="cpu")
        except Exception as exc:
            raise BadInputError(f"cannot load TorchScript model '{path}': {type(exc).__name__}") from None
        self.net.eval()

    def _run(self, x: np.ndarray) -> np.ndarray:
        with self.torch.inference_mode():
            try:
                return self.net(self.torch.from_numpy(x)).numpy()
            except RuntimeError as exc:  # a trace fed the wrong layout or size fails deep inside
                raise BadInputError(f"TorchScript model '{self.path}' cannot run on input {fmt_shape((None, *x.shape[1:]))} "
                                    f"({str(exc).strip().splitlines()[-1][:160]}); pass --input with the "
                                    "contract it was trained with (layout, size)") from None
