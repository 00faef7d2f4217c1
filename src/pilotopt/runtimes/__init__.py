"""Predictors: load an artifact and run a batch of the model's own input tensors.

One module per runtime registers its factory; the artifact kind (pilotopt.artifacts, detected by
content) names the runtime that runs it, so adding a runtime is one runtime module plus one kind
module. This is the one place a predictor is built: seen through its input contract
(`load_artifact_predictor`, `contract_predictor`: a base.ContractPredictor) every predictor takes
camera images and returns normalized (v, w), and drives the simulator as a ModelBrain."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path
from typing import Callable

from pilotopt.artifacts import Artifact, detect_kind, open_artifact, resolve_path
from pilotopt.contracts import load_contract
from pilotopt.errors import BadInputError
from pilotopt.runtimes.base import ContractPredictor, Predictor

_RUNTIMES: dict[str, Callable[..., Predictor]] = {}


def register_runtime(name: str):
    """Decorator for a predictor factory `(path, threads=None, **options)`. Which files it runs is
    the artifact kinds' business (`pilotopt.artifacts`): a kind names its runtime."""
    def deco(factory):
        _RUNTIMES[name] = factory
        return factory
    return deco


def _load_all() -> None:
    for mod in pkgutil.iter_modules(__path__):
        if mod.name != "base" and not mod.name.startswith("_"):
            importlib.import_module(f"{__name__}.{mod.name}")


def runtime_names() -> list[str]:
    _load_all()
    return sorted(_RUNTIMES)


def load_predictor(path: Path | str, runtime: str | None = None, threads: int | None = None,
                   arch: str | None = None, arch_args: dict | None = None, input_shape: tuple | None = None) -> Predictor:
    """Load an artifact with the named runtime, or with the runtime of its kind (detected by
    content). The predictor takes the model's own input (see pilotopt.contracts for frames);
    `input_shape` re-declares a Keras model declared with a transposed input."""
    _load_all()
    path = resolve_path(Path(path))  # a training output folder stands for the model it holds
    if not path.exists():
        raise BadInputError(f"model '{path}' does not exist; pass a trained model file or folder")
    options = {"arch": arch, "arch_args": arch_args} if arch else {}
    if input_shape is not None:
        options["input_shape"] = tuple(input_shape)
    if runtime is not None:
        if runtime not in _RUNTIMES:
            raise BadInputError(f"unknown runtime '{runtime}'; choose one of {', '.join(sorted(_RUNTIMES))}")
        return _RUNTIMES[runtime](path, threads=threads, **options)
    kind = detect_kind(path)
    if kind is None or kind.runtime not in _RUNTIMES:
        open_artifact(path, arch=arch)  # raises the one-line reason
        raise BadInputError(f"'{path}' has no runtime here; known: {', '.join(sorted(_RUNTIMES))}")
    return _RUNTIMES[kind.runtime](path, threads=threads, **options)


def load_artifact_predictor(art: Artifact, runtime: str | None = None, threads: int | None = None) -> ContractPredictor:
    """The artifact's predictor seen through its input contract: uint8 images of the contract's
    geometry in, pilotopt-normalized (v, w) out."""
    return contract_predictor(art.path, runtime or art.runtime, threads, art.contract, art.arch, art.arch_args,
                              sequence_length=int(art.metadata.get("sequence_length") or 1))


def contract_predictor(path: Path, runtime: str, threads: int | None, contract=None, arch: str | None = None,
                       arch_args: dict | None = None, sequence_length: int = 1) -> ContractPredictor:
    """`runtime`'s predictor of `path` through `contract` (a preset, mapping or InputContract; None:
    pilotopt's own), without detecting the file's kind (a named runtime may run any file)."""
    contract = load_contract(contract)
    shape = contract.sample_shape(1) if runtime == "keras" else None  # per frame; the model keeps its T
    raw = load_predictor(path, runtime=runtime, threads=threads, arch=arch, arch_args=arch_args or None,
                         input_shape=shape)
    return ContractPredictor(raw, contract)
