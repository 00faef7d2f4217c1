"""Named driving conditions for closed-loop robustness runs, one module per kind, in a registry (as
Gymnasium registers environments): `register_condition(name, apply, ...)` adds one.

A condition spec is `name` or `name:level`, combined with '+': `dusk`, `gaussian:12`,
`slow:10`, `dusk+gaussian:8`. Each applies itself to a `Condition` (what the drive changes):
the world's look, noise on the camera image the brain receives (as Behavior Metrics adds it just
before the network), first-order actuator lag, and a latency scale that emulates slower hardware.
`default` changes nothing."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from pilotopt.errors import BadInputError

DEFAULT = "default"


@dataclass(frozen=True)
class Condition:
    """What a drive under this condition changes; `spec` is its canonical name."""

    spec: str = DEFAULT
    look: str = "default"
    camera_noise: str | None = None  # a registered camera-noise kind ("gaussian", "salt_pepper")
    noise_level: float = 0.0
    actuator_lag: float = 0.0  # s, first-order time constant of the actuators
    latency_scale: float = 1.0  # the brain's latency x this (slower hardware)

    @property
    def slowdown_only(self) -> bool:
        """Only the brain's latency changes (default, `slow:N`): a drive under it measures speed alone."""
        return replace(self, spec=DEFAULT, latency_scale=1.0) == Condition()

    def noisy(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The brain's observation with this condition's camera noise (unchanged without)."""
        if self.camera_noise is None or self.noise_level <= 0:
            return image
        return CAMERA_NOISE[self.camera_noise](image, self.noise_level, rng)


@dataclass(frozen=True)
class ConditionKind:
    name: str
    apply: Callable[[Condition, float | None], Condition]
    description: str
    level: str | None = None  # what the level means (None: takes no level)
    default_level: float | None = None


_REGISTRY: dict[str, ConditionKind] = {}
CAMERA_NOISE: dict[str, Callable[[np.ndarray, float, np.random.Generator], np.ndarray]] = {}


def register_condition(name: str, apply: Callable[[Condition, float | None], Condition], description: str,
                       level: str | None = None, default_level: float | None = None) -> None:
    _REGISTRY[name] = ConditionKind(name, apply, description, level, default_level)


def condition_kinds() -> dict[str, ConditionKind]:
    _load()
    return dict(_REGISTRY)


def _load() -> None:
    """The built-in kinds register on first use (their modules import this one)."""
    from pilotopt.sim.conditions import actuator_lag, camera_noise, looks, slow_hardware  # noqa: F401


def _number(text: str, spec: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise BadInputError(f"condition '{spec}': level '{text}' is not a number") from None
    if not value > 0:
        raise BadInputError(f"condition '{spec}': level must be > 0, got {text}")
    return value


def parse_condition(spec: str | Condition | None) -> Condition:
    """'name[:level][+name[:level]...]' -> a Condition; unknown names are one-line errors."""
    if isinstance(spec, Condition):
        return spec
    _load()
    text = (spec or DEFAULT).strip()
    cond = Condition()
    parts = []
    for part in text.split("+"):
        name, _, raw = part.strip().partition(":")
        name = name.strip().lower()
        kind = _REGISTRY.get(name)
        if kind is None:
            raise BadInputError(f"unknown condition '{part.strip()}'; choose from {', '.join(sorted(_REGISTRY))} "
                                "(a level after ':', combine with '+'; see `pilotopt list conditions`)")
        if raw and kind.level is None:
            raise BadInputError(f"condition '{name}' takes no level (got '{part.strip()}')")
        level = _number(raw, text) if raw else kind.default_level
        cond = kind.apply(cond, level)
        if name != DEFAULT:
            parts.append(f"{name}:{level:g}" if kind.level is not None else name)
    return replace(cond, spec="+".join(parts) or DEFAULT)


def condition_names() -> list[str]:
    return sorted(condition_kinds())


register_condition(DEFAULT, lambda c, _level: c, "no change: the circuit as recorded")
