"""`pilotopt deploy`: a variant in the form the user's stack runs, one module per target.

Every target writes one folder, atomically, holding the model in its target's form, the input
contract, and `reference.npz`: camera frames with the (v, w) pilotopt computed for them, so the
user can prove on their side that the model is fed as pilotopt fed it. Targets register
themselves (`target_*.py`), as techniques and runtimes do."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path
from typing import Callable

from pilotopt.deploy.source import DeploySource
from pilotopt.errors import BadInputError

_TARGETS: dict[str, Callable] = {}
_DESCRIPTIONS: dict[str, str] = {}


def register_target(name: str, description: str):
    def deco(fn):
        _TARGETS[name] = fn
        _DESCRIPTIONS[name] = description
        return fn
    return deco


def _load() -> None:
    for mod in pkgutil.iter_modules(__path__):
        if mod.name.startswith("target_"):
            importlib.import_module(f"{__name__}.{mod.name}")


def target_names() -> list[str]:
    _load()
    return sorted(_TARGETS)


def target_descriptions() -> dict[str, str]:
    _load()
    return dict(sorted(_DESCRIPTIONS.items()))


def deploy_variant(variant: Path | str, target: str, out: Path | str, *, frames: Path | str | None = None,
                   n_frames: int = 20, threads: int = 1) -> dict:
    """Write `variant` (a variant folder or model file pilotopt opens) for `target` into `out`;
    returns what was written (`folder`, `files`, `notes`: what could not be expressed and why)."""
    _load()
    if target not in _TARGETS:
        raise BadInputError(f"unknown deploy target '{target}'; choose one of {', '.join(sorted(_TARGETS))}")
    source = DeploySource.open(variant, frames=frames, n_frames=n_frames, threads=threads)
    return _TARGETS[target](source, Path(out))
