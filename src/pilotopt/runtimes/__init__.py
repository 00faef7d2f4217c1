"""Predictors: load an artifact, run a batch of preprocessed frames, return normalized (v, w).

One module per runtime registers itself with a `detect(path)` test, so adding a runtime is adding a
file. Every predictor also drives the simulator through `pilotopt.sim.brains.model.ModelBrain`."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path
from typing import Callable

from pilotopt.errors import BadInputError
from pilotopt.runtimes.base import Predictor

_RUNTIMES: dict[str, tuple[Callable[[Path], bool], Callable[..., Predictor]]] = {}


def register_runtime(name: str, detect: Callable[[Path], bool]):
    def deco(factory):
        _RUNTIMES[name] = (detect, factory)
        return factory
    return deco


def _load_all() -> None:
    for mod in pkgutil.iter_modules(__path__):
        if mod.name != "base":
            importlib.import_module(f"{__name__}.{mod.name}")


def runtime_names() -> list[str]:
    _load_all()
    return sorted(_RUNTIMES)


def resolve_artifact(path: Path) -> Path:
    """A training output folder stands for the model it holds (metrics.json names it)."""
    import json

    metrics = path / "metrics.json"
    if path.is_dir() and metrics.is_file():
        try:
            arts = json.loads(metrics.read_text()).get("artifacts") or []
        except ValueError:
            raise BadInputError(f"'{metrics}' is not valid JSON; retrain or pass the model file itself") from None
        if arts:
            return path / arts[0]
    return path


def load_predictor(path: Path | str, runtime: str | None = None, threads: int | None = None) -> Predictor:
    """Load an artifact with the named runtime, or the first runtime that recognizes it."""
    _load_all()
    path = resolve_artifact(Path(path))
    if not path.exists():
        raise BadInputError(f"model '{path}' does not exist; pass a trained model file or folder")
    if runtime is not None:
        if runtime not in _RUNTIMES:
            raise BadInputError(f"unknown runtime '{runtime}'; choose one of {', '.join(sorted(_RUNTIMES))}")
        return _RUNTIMES[runtime][1](path, threads=threads)
    for name, (detect, factory) in _RUNTIMES.items():
        if detect(path):
            return factory(path, threads=threads)
    raise BadInputError(
        f"'{path}' is not a model pilotopt can load (known: {', '.join(sorted(_RUNTIMES))}); "
        "pass a model.pt, model.h5, SavedModel folder or training output folder"
    )
