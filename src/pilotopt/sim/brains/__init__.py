"""Brains: what drives the car. A brain reads a camera observation (its `view`) and returns (v, w);
built-in ones are registered by name, model runtimes implement the same interface."""

from __future__ import annotations

from typing import Callable

from pilotopt.errors import BadInputError
from pilotopt.sim.brains.base import Brain

_BRAINS: dict[str, Callable[..., Brain]] = {}


def register_brain(name: str):
    def deco(factory):
        _BRAINS[name] = factory
        return factory
    return deco


def brain_names() -> list[str]:
    _load_builtins()
    return sorted(_BRAINS)


def make_brain(name: str, **kwargs) -> Brain:
    _load_builtins()
    if name not in _BRAINS:
        raise BadInputError(f"unknown brain '{name}'; choose one of {', '.join(sorted(_BRAINS))}")
    return _BRAINS[name](**kwargs)


def _load_builtins() -> None:
    from pilotopt.sim.brains import classic, expert  # noqa: F401  (register on import)
