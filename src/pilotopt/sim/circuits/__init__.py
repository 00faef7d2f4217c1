"""Built-in circuits, one module each: a module defines `CIRCUIT = CircuitSpec(...)` and is found
automatically, so adding a circuit is adding a file (as Gymnasium registers environments)."""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from pilotopt.errors import BadInputError
from pilotopt.sim.track import Track

DIRECTIONS = ("anticlockwise", "clockwise")


@dataclass(frozen=True)
class CircuitSpec:
    """A closed centre line given by control points (any scale, anticlockwise order), scaled
    to `length` metres and smoothed by a periodic cubic spline."""

    name: str
    control: tuple[tuple[float, float], ...]
    length: float
    description: str
    reference: str = ""  # where the length comes from (e.g. the Gazebo world)


@lru_cache(maxsize=1)
def _registry() -> dict[str, CircuitSpec]:
    found: dict[str, CircuitSpec] = {}
    for mod in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{mod.name}")
        spec = getattr(module, "CIRCUIT", None)
        if isinstance(spec, CircuitSpec):
            found[spec.name] = spec
    return dict(sorted(found.items()))


def circuit_names() -> list[str]:
    return list(_registry())


def circuit_spec(name: str) -> CircuitSpec:
    reg = _registry()
    if name not in reg:
        raise BadInputError(
            f"unknown circuit '{name}'; choose one of {', '.join(reg)} or pass a CSV file of x,y points"
        )
    return reg[name]


def parse_direction(direction: str) -> str:
    aliases = {"anticlockwise": "anticlockwise", "counterclockwise": "anticlockwise", "ccw": "anticlockwise",
               "clockwise": "clockwise", "cw": "clockwise"}
    key = direction.strip().lower().replace("-", "").replace("_", "")
    if key not in aliases:
        raise BadInputError(f"unknown direction '{direction}'; use clockwise or anticlockwise")
    return aliases[key]


@lru_cache(maxsize=32)
def _base_track(name_or_path: str) -> Track:
    path = Path(name_or_path)
    if name_or_path.lower().endswith(".csv") or (path.suffix and path.exists()):
        track = Track.from_csv(path)
    else:
        spec = circuit_spec(name_or_path)
        track = Track.from_control_points(spec.name, spec.control, length=spec.length)
    if not track.is_anticlockwise:
        track = track.reversed()
    return track


def load_circuit(name_or_path: str, direction: str = "anticlockwise") -> Track:
    """A built-in circuit by name, or a user circuit from a CSV path, in the given direction."""
    base = _base_track(str(name_or_path))
    return base if parse_direction(direction) == "anticlockwise" else base.reversed()
