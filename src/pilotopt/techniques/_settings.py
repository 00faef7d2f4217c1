"""One declaration per technique setting, as Olive's `PassConfigParam`: each setting is declared once,
in its technique's settings dataclass, with its type (the annotation), default, bounds or choices and a
one-line description:

    @dataclass(frozen=True)
    class StaticSettings(Settings):
        calibration_frames: int = setting(200, "TRAINING frames run through the observers", ge=1)

Validation (`Settings.__post_init__`), the conversion of command-line strings (`make_settings`),
`pilotopt list techniques --settings` and the docs' settings page all read these declarations. A
subclass may redeclare a field with a plain default (`epochs: int = 1`) to change only the default: it
keeps the declaration of the base class. No framework imports here."""

from __future__ import annotations

import dataclasses
import difflib
import functools
import typing
import warnings
from dataclasses import dataclass
from typing import Any

from pilotopt.data.augment import SPECS as AUGMENTATIONS
from pilotopt.errors import BadInputError

_KEY = "pilotopt.setting"
TYPES = (bool, int, float, str)
# old setting names -> the one name each knob has now; accepted for one release with a warning
RENAMED = {"representative_frames": "calibration_frames", "subset_size": "calibration_frames"}


class RenamedSettingWarning(FutureWarning):
    """A setting was given by its old name; it still works in this release."""


def setting(default: Any, description: str, *, ge: float | None = None, gt: float | None = None,
            le: float | None = None, lt: float | None = None, choices: tuple | None = None,
            nonempty: bool = False):
    """A declared settings field: its default, a one-line description and what values it takes
    (`ge`/`gt`/`le`/`lt` bounds, `choices`, `nonempty` for a string); the type is the annotation."""
    spec = {"description": description, "ge": ge, "gt": gt, "le": le, "lt": lt,
            "choices": tuple(choices) if choices is not None else None, "nonempty": nonempty}
    return dataclasses.field(default=default, metadata={_KEY: spec})


def _num(x) -> str:
    return f"{x:g}" if isinstance(x, (int, float)) else str(x)


@dataclass(frozen=True)
class Param:
    """One declared setting."""

    name: str
    type: type
    default: Any
    description: str
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    choices: tuple | None = None
    nonempty: bool = False

    @property
    def type_name(self) -> str:
        return self.type.__name__

    @property
    def default_text(self) -> str:
        """The default as YAML writes it: true, 0.0001, "" ."""
        if isinstance(self.default, bool):
            return "true" if self.default else "false"
        if isinstance(self.default, str):
            return self.default or '""'
        return repr(self.default)

    @property
    def bounds(self) -> str:
        """What values it takes, as the error messages and the listing say it: '>= 1', 'in [0, 1)'."""
        if self.choices is not None:
            return "one of " + ", ".join(map(str, self.choices))
        low = (f"[{_num(self.ge)}" if self.ge is not None else f"({_num(self.gt)}" if self.gt is not None else None)
        high = (f"{_num(self.le)}]" if self.le is not None else f"{_num(self.lt)})" if self.lt is not None else None)
        if low and high:
            return f"in {low}, {high}"
        if low:
            return (">= " if low[0] == "[" else "> ") + low[1:]
        if high:
            return ("<= " if high[-1] == "]" else "< ") + high[:-1]
        return "not empty" if self.nonempty else ""

    def check(self, value) -> None:
        """A one-line BadInputError when `value` is outside the declaration."""
        if self.choices is not None:
            if value not in self.choices:
                raise BadInputError(f"{self.name} must be {self.bounds}, got {value!r}")
            return
        if self.nonempty and not str(value).strip():
            raise BadInputError(f"{self.name} must not be empty")
        if self.type in (int, float):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise BadInputError(f"{self.name} must be {self.type_name}, got {value!r}")
            if ((self.ge is not None and not value >= self.ge) or (self.gt is not None and not value > self.gt)
                    or (self.le is not None and not value <= self.le) or (self.lt is not None and not value < self.lt)):
                raise BadInputError(f"{self.name} must be {self.bounds}, got {_num(value)}")

    def coerce(self, technique: str, value) -> Any:
        """`value` (a command-line string, or a YAML / JSON value) as the declared type."""
        try:
            if self.type is bool:
                if isinstance(value, str):
                    low = value.strip().lower()
                    if low in ("1", "true", "yes", "on"):
                        return True
                    if low in ("0", "false", "no", "off"):
                        return False
                    raise ValueError
                if isinstance(value, bool) or type(value).__name__ == "bool_":  # numpy's bool too
                    return bool(value)
                raise ValueError
            if self.type is int:
                if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                    raise ValueError
                return int(value)
            if self.type is float:
                if isinstance(value, bool):
                    raise ValueError
                return float(value)
            return str(value)
        except (TypeError, ValueError):
            raise BadInputError(f"setting {technique}.{self.name} must be {self.type_name}, got {value!r}") from None


@functools.lru_cache(maxsize=None)
def params(cls: type) -> tuple[Param, ...]:
    """The declared settings of a settings dataclass, in field order. A field without a declaration
    of its own takes its base class's (a redeclared default); one with none at all is a TypeError."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        spec = f.metadata.get(_KEY) or next((g.metadata[_KEY] for base in cls.__mro__[1:]
                                             if dataclasses.is_dataclass(base)
                                             for g in dataclasses.fields(base) if g.name == f.name and _KEY in g.metadata),
                                            None)
        if spec is None:
            raise TypeError(f"setting '{f.name}' of {cls.__name__} is not declared; write "
                            f"`{f.name}: type = setting(default, description, ...)`")
        kind = hints.get(f.name)
        if kind not in TYPES:
            raise TypeError(f"setting '{f.name}' of {cls.__name__} must be one of {', '.join(t.__name__ for t in TYPES)}")
        if f.default is dataclasses.MISSING:
            raise TypeError(f"setting '{f.name}' of {cls.__name__} needs a default")
        out.append(Param(name=f.name, type=kind, default=f.default, **spec))
    return tuple(out)


def redeclare(p: Param):
    """A field declared as `p` is, default included (a class built from other classes' settings: a
    registered chain's)."""
    return setting(p.default, p.description, ge=p.ge, gt=p.gt, le=p.le, lt=p.lt, choices=p.choices,
                   nonempty=p.nonempty)


@dataclass(frozen=True)
class Settings:
    """The base of every technique's settings: each value is checked against its declaration.
    `_ordered`: pairs (a, b) of settings with a <= b."""

    _ordered = ()

    def __post_init__(self):
        for p in params(type(self)):
            p.check(getattr(self, p.name))
        for a, b in self._ordered:
            if getattr(self, a) > getattr(self, b):
                raise BadInputError(f"{a} must be <= {b}, got {_num(getattr(self, a))} > {_num(getattr(self, b))}")


# -- what a user gives ------------------------------------------------------------------------------
def renamed(values: dict | None, where: str = "settings") -> dict:
    """`values` with old setting names replaced by the new ones (a one-line RenamedSettingWarning
    each, naming the new key); both names at once is a one-line error."""
    out = {}
    for key, value in (values or {}).items():
        new = RENAMED.get(key)
        if new is None:
            out[key] = value
            continue
        if new in values or new in out:
            raise BadInputError(f"{where}: '{key}' is an old name of '{new}', which is given too; keep only '{new}'")
        # one location, so each old name is shown once per process
        warnings.warn(f"setting '{key}' is renamed '{new}'; the old name is accepted until the next release",
                      RenamedSettingWarning)
        out[new] = value
    return out


def closest(name: str, valid) -> str | None:
    """The valid name closest to a misspelled one (difflib), or None."""
    found = difflib.get_close_matches(str(name), list(valid), n=1, cutoff=0.6)
    return found[0] if found else None


def make_settings(technique: str, cls: type, overrides: dict | None = None):
    """`cls()` with `overrides` applied; unknown keys and values of the wrong type -> BadInputError.
    String values (from the command line) are converted to the declared type."""
    overrides = renamed(overrides, f"technique '{technique}'")
    declared = {p.name: p for p in params(cls)}
    unknown = [k for k in overrides if k not in declared]
    if unknown:
        valid = ", ".join(declared) if declared else "(none: it has no settings)"
        near = closest(unknown[0], declared)
        hint = f" (did you mean '{near}'?)" if near else ""
        raise BadInputError(f"unknown setting(s) {', '.join(map(str, unknown))} for technique '{technique}'{hint}; "
                            f"valid settings: {valid}")
    return cls(**{key: declared[key].coerce(technique, value) for key, value in overrides.items()})


def settings_dict(settings) -> dict:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(settings).items()}


# -- shared declarations ----------------------------------------------------------------------------
def calibration(default: int = 200, note: str = ""):
    """The one calibration knob of every technique that measures activation ranges on TRAINING frames."""
    return setting(default, "TRAINING frames the activation ranges are measured on" + (f" ({note})" if note else ""),
                   ge=1)


def augmentation(default: str = "none"):
    return setting(default, "photometric augmentation of the fine-tuning frames (keeps the input model's "
                            "robustness to light and noise)", choices=AUGMENTATIONS)


@dataclass(frozen=True)
class FineTuneSettings(Settings):
    """The fine-tuning knobs every fine-tuning technique shares, TF-MOT and PyTorch alike (subclass to
    add more; a subclass may redeclare a field with a plain default to change only its default)."""

    epochs: int = setting(2, "passes over the (possibly capped) training split", ge=1)
    batch_size: int = setting(64, "fine-tuning batch size", ge=1)
    learning_rate: float = setting(1e-4, "Adam learning rate of the fine-tune", gt=0)
    max_train_frames: int = setting(0, "training frames the fine-tune uses (0: the whole training split)", ge=0)
    augment: str = augmentation()
