"""DataConfig: every knob of dataset loading in one validated value, so a bad setting fails at
once with one line instead of deep inside a training run."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from pilotopt.atomic import default_cache_dir
from pilotopt.data.augment import check_spec
from pilotopt.errors import BadInputError
from pilotopt.preprocess import PILOTNET_GEOMETRY, Geometry

DEFAULT_TEST_CIRCUITS = ("simple", "montmelo", "montreal")


@dataclass(frozen=True)
class DataConfig:
    """Where the recordings are and how to split, expand and cache them.

    Values are normalized on construction (roots -> tuple of Paths, circuit names lower case,
    a comma-separated string of test circuits is accepted) and checked; `dataclasses.replace`
    validates again."""

    roots: Sequence[Path | str] = ()
    test_circuits: Sequence[str] | str = DEFAULT_TEST_CIRCUITS
    val_fraction: float = 0.2
    seed: int = 0
    flip: bool = True
    oversample: int = 2
    turn_threshold: float = 1.0  # rad/s: |w| at or above this is a sharp turn
    skip_bad: bool = False
    cache_dir: Path | str | None = None
    sequence_length: int = 1
    augment: str | None = None
    workers: int = 2  # decode processes for the one-time cache build
    geometry: Geometry = PILOTNET_GEOMETRY  # crop rows and size of the cached images (the model's input contract)

    def __post_init__(self) -> None:
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731 (frozen)
        roots = self.roots
        if isinstance(roots, (str, Path)):
            roots = [roots]
        try:
            roots = tuple(Path(r).expanduser() for r in roots)
        except TypeError:
            raise BadInputError(f"roots must be a list of dataset folders, got {self.roots!r}") from None
        set_("roots", roots)  # may be empty here (a defaults holder); load_splits requires one

        tc = self.test_circuits
        if tc is None:
            tc = ()
        elif isinstance(tc, str):
            tc = tc.split(",")
        try:
            names = tuple(dict.fromkeys(str(t).strip().lower() for t in tc if str(t).strip()))
        except TypeError:
            raise BadInputError(f"test_circuits must be circuit names, got {self.test_circuits!r}") from None
        set_("test_circuits", names)

        _number("val_fraction", self.val_fraction)
        if not 0.0 <= float(self.val_fraction) < 1.0:
            raise BadInputError(f"val_fraction must be in [0, 1), got {self.val_fraction}")
        set_("val_fraction", float(self.val_fraction))
        _integer("seed", self.seed)
        set_("seed", int(self.seed))
        _flag("flip", self.flip)
        _flag("skip_bad", self.skip_bad)
        set_("flip", bool(self.flip))
        set_("skip_bad", bool(self.skip_bad))
        _integer("oversample", self.oversample, minimum=1)
        _number("turn_threshold", self.turn_threshold)
        if float(self.turn_threshold) < 0:
            raise BadInputError(f"turn_threshold must be >= 0 rad/s, got {self.turn_threshold}")
        set_("turn_threshold", float(self.turn_threshold))
        _integer("sequence_length", self.sequence_length, minimum=1)
        _integer("workers", self.workers, minimum=1)
        for name in ("oversample", "sequence_length", "workers"):
            set_(name, int(getattr(self, name)))
        if self.cache_dir is not None:
            if not isinstance(self.cache_dir, (str, Path)) or not str(self.cache_dir).strip():
                raise BadInputError(f"cache_dir must be a folder path, got {self.cache_dir!r}")
            set_("cache_dir", Path(self.cache_dir).expanduser())
        if self.augment is not None:
            check_spec(self.augment)

    @property
    def resolved_cache_dir(self) -> Path:
        return self.cache_dir if self.cache_dir is not None else default_cache_dir()


def _number(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise BadInputError(f"{name} must be a finite number, got {value!r}")


def _integer(name: str, value, minimum: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise BadInputError(f"{name} must be an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise BadInputError(f"{name} must be >= {minimum}, got {value}")


def _flag(name: str, value) -> None:
    if not isinstance(value, (bool, np.bool_)):
        raise BadInputError(f"{name} must be true or false, got {value!r}")
