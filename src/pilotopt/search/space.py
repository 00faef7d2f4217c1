"""The search space: chains built from ordered slots, each slot a choice of techniques (or none)
with ranges for their settings, declared in YAML and validated against the technique registry.

A slot's choices are filtered by the artifact kind the chain holds at that point (a channel-pruned
TorchScript model cannot go to ExecuTorch, a Keras model cannot be channel-pruned), and the Optuna
parameter is named after that kind (`precision@torchscript`), so one name always has one
distribution, as Optuna requires of define-by-run spaces.

YAML form (`search.space`):

    baselines: [torch, keras]            # the run's baseline variants to start from
    slots:
      structure:                         # optional slot: `none` is a choice
        none: {}
        torch_channel_prune: {pruning_ratio: {low: 0.2, high: 0.7}}
        torch_distill: {}
      precision:                         # the last slot is required: no `none`
        onnx_int8_static: {per_channel: [true, false], calibration_frames: {low: 50, high: 300, step: 50}}
        tflite_int8_fallback: {}

A setting is a fixed value, a list of choices, or a range {low, high} (integers when both are
integers; `log: true`, `step: N` as in Optuna).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Protocol

from pilotopt.errors import BadInputError
from pilotopt.techniques import techniques
from pilotopt.techniques._settings import closest, renamed

NONE = "none"


@dataclass(frozen=True)
class Range:
    low: float
    high: float
    log: bool = False
    step: float | None = None

    @property
    def integer(self) -> bool:
        return isinstance(self.low, int) and isinstance(self.high, int) and not isinstance(self.low, bool)


@dataclass(frozen=True)
class Choice:
    values: tuple


@dataclass(frozen=True)
class Fixed:
    value: Any


Param = Range | Choice | Fixed


@dataclass(frozen=True)
class Option:
    """One technique of a slot, with its settings' ranges (technique None: the slot is skipped)."""

    technique: str | None
    params: dict[str, Param] = field(default_factory=dict)


@dataclass(frozen=True)
class Slot:
    name: str
    options: tuple[Option, ...]

    @property
    def optional(self) -> bool:
        return any(o.technique is None for o in self.options)


@dataclass(frozen=True)
class Space:
    baselines: tuple[str, ...]
    slots: tuple[Slot, ...]

    def to_dict(self) -> dict:
        return {"baselines": list(self.baselines),
                "slots": {s.name: {o.technique or NONE: {k: _param_doc(p) for k, p in o.params.items()}
                                   for o in s.options} for s in self.slots}}


@dataclass(frozen=True)
class Candidate:
    """What one trial builds: a chain of steps with their settings, from one baseline."""

    baseline: str
    steps: tuple[str, ...]
    settings: dict[str, dict]

    @property
    def name(self) -> str:
        """A stable name from the content: the same chain and settings are the same variant."""
        doc = json.dumps({"baseline": self.baseline, "steps": list(self.steps), "settings": self.settings},
                         sort_keys=True, default=str)
        return f"s-{hashlib.sha256(doc.encode()).hexdigest()[:10]}"

    @property
    def chain(self) -> str:
        return ">".join(self.steps)

    def spec(self) -> dict:
        """The `variants:` entry that `pilotopt optimize --config` runs."""
        out: dict = {"steps": list(self.steps)}
        if any(self.settings.values()):
            out["settings"] = {k: dict(v) for k, v in self.settings.items() if v}
        return out

    def to_dict(self) -> dict:
        return {"name": self.name, "baseline": self.baseline, "steps": list(self.steps), "chain": self.chain,
                "settings": self.settings}


class Suggester(Protocol):
    """What an Optuna trial offers (also a replay of stored parameters)."""

    def suggest_categorical(self, name: str, choices): ...
    def suggest_float(self, name: str, low: float, high: float, *, step=None, log: bool = False): ...
    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False): ...


# -- the default space ------------------------------------------------------------------------------
DEFAULT_SPACE: dict = {
    "baselines": ["torch", "keras"],
    "slots": {
        "structure": {NONE: {}, "torch_channel_prune": {"pruning_ratio": {"low": 0.2, "high": 0.7}},
                      "torch_distill": {}},
        "sparsity": {NONE: {}, "torch_prune_global": {"amount": {"low": 0.2, "high": 0.8}},
                     "tf_prune": {"final_sparsity": {"low": 0.5, "high": 0.9}}},
        "precision": {"onnx_fp32": {}, "openvino_fp32": {}, "executorch_fp32": {}, "tflite_fp32": {},
                      "onnx_int8_static": {"per_channel": [True, False],
                                           "calibration_frames": {"low": 50, "high": 300, "step": 50}},
                      "openvino_int8": {"calibration_frames": {"low": 50, "high": 300, "step": 50}},
                      "torch_static": {"calibration_frames": {"low": 50, "high": 300, "step": 50}},
                      "tflite_int8_fallback": {"calibration_frames": {"low": 50, "high": 300, "step": 50}},
                      "tflite_dynamic_range": {}},
    },
}


# -- parsing -----------------------------------------------------------------------------------------
def _param(where: str, value) -> Param:
    if isinstance(value, dict):
        unknown = set(value) - {"low", "high", "log", "step"}
        if unknown or not {"low", "high"} <= set(value):
            raise BadInputError(f"{where}: a range is {{low: A, high: B}} (optional log, step); got {value}")
        low, high = value["low"], value["high"]
        if not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (low, high)) or low > high:
            raise BadInputError(f"{where}: low and high must be numbers with low <= high; got {low}, {high}")
        return Range(low, high, bool(value.get("log", False)), value.get("step"))
    if isinstance(value, list):
        if not value:
            raise BadInputError(f"{where}: an empty list of choices; give at least one value")
        return Choice(tuple(value))
    return Fixed(value)


def _param_doc(p: Param):
    if isinstance(p, Range):
        return {"low": p.low, "high": p.high, **({"log": True} if p.log else {}),
                **({"step": p.step} if p.step is not None else {})}
    return list(p.values) if isinstance(p, Choice) else p.value


def parse_space(doc: dict | None, where: str = "search.space") -> Space:
    """The YAML mapping -> a validated Space; every technique and setting checked against the
    registry (a one-line error names what is wrong and how to fix it)."""
    doc = DEFAULT_SPACE if doc is None else doc
    if not isinstance(doc, dict) or set(doc) - {"baselines", "slots"}:
        raise BadInputError(f"{where}: expected keys baselines and slots; got {sorted(doc) if isinstance(doc, dict) else doc}")
    baselines = doc.get("baselines", DEFAULT_SPACE["baselines"])
    if not isinstance(baselines, list) or not baselines or not all(isinstance(b, str) for b in baselines):
        raise BadInputError(f"{where}.baselines: a list of baseline variant names, e.g. [torch, keras]")
    slots_doc = doc.get("slots", DEFAULT_SPACE["slots"])
    if not isinstance(slots_doc, dict) or not slots_doc:
        raise BadInputError(f"{where}.slots: a mapping of slot names to {{technique: settings}}")
    known = techniques()
    slots = []
    for i, (slot, options) in enumerate(slots_doc.items()):
        if not isinstance(options, dict) or not options:
            raise BadInputError(f"{where}.slots.{slot}: a mapping of technique names (or none) to settings")
        parsed = []
        for tech, settings in options.items():
            at = f"{where}.slots.{slot}.{tech}"
            if tech == NONE:
                if i == len(slots_doc) - 1:
                    raise BadInputError(f"{at}: the last slot makes the deployable file and cannot be none; "
                                        "remove none from it")
                parsed.append(Option(None))
                continue
            if tech not in known:
                raise BadInputError(f"{at}: unknown technique '{tech}'; see `pilotopt list techniques`")
            if known[tech].is_chain:
                raise BadInputError(f"{at}: '{tech}' is a chain of its own; put its steps in slots instead")
            fields = [p.name for p in known[tech].settings]
            settings = settings or {}
            if not isinstance(settings, dict):
                raise BadInputError(f"{at}: settings must be a mapping {{key: value | [choices] | {{low, high}}}}")
            settings = renamed(settings, at)
            bad = [k for k in settings if k not in fields]
            if bad:
                near = closest(bad[0], fields)
                raise BadInputError(f"{at}: unknown setting(s) {', '.join(bad)}"
                                    + (f" (did you mean '{near}'?)" if near else "")
                                    + f"; {tech} has {', '.join(fields) or 'no settings'}")
            parsed.append(Option(tech, {k: _param(f"{at}.{k}", v) for k, v in settings.items()}))
        slots.append(Slot(str(slot), tuple(parsed)))
    return Space(tuple(baselines), tuple(slots))


# -- sampling ------------------------------------------------------------------------------------------
def _value(s: Suggester, name: str, p: Param):
    if isinstance(p, Fixed):
        return p.value
    if isinstance(p, Choice):
        return s.suggest_categorical(name, list(p.values))
    if p.integer:
        return s.suggest_int(name, p.low, p.high, step=int(p.step or 1), log=p.log)
    return s.suggest_float(name, float(p.low), float(p.high), step=p.step, log=p.log)


def feasible(slot: Slot, kind: str) -> list[Option]:
    """The slot's options whose technique takes `kind` (none always fits an optional slot)."""
    known = techniques()
    return [o for o in slot.options if o.technique is None or known[o.technique].takes(kind)]


def suggest(s: Suggester, space: Space, baseline_kinds: dict[str, str]) -> Candidate | None:
    """Draw one candidate. `baseline_kinds`: {baseline name: artifact kind} of the baselines that
    exist. None when no chain fits (the space allows nothing after the choices made)."""
    known = techniques()
    present = [b for b in space.baselines if b in baseline_kinds]
    if not present:
        raise BadInputError(f"search.space.baselines: none of {', '.join(space.baselines)} is a variant of this "
                            f"run (it has {', '.join(baseline_kinds) or 'none'})")
    baseline = s.suggest_categorical("baseline", present)
    kind = baseline_kinds[baseline]
    steps: list[str] = []
    settings: dict[str, dict] = {}
    for slot in space.slots:
        options = feasible(slot, kind)
        if not [o for o in options if o.technique is not None]:
            if slot.optional:
                continue
            return None
        labels = [o.technique or NONE for o in options]
        pick = labels[0] if len(labels) == 1 else s.suggest_categorical(f"{slot.name}@{kind}", labels)
        option = options[labels.index(pick)]
        if option.technique is None:
            continue
        steps.append(option.technique)
        settings[option.technique] = {k: _value(s, f"{option.technique}.{k}", p) for k, p in option.params.items()}
        kind = known[option.technique].produces
    return Candidate(baseline, tuple(steps), settings)


class Replay:
    """Stored parameters offered as a Suggester: rebuilds the candidate a trial drew."""

    def __init__(self, params: dict):
        self.params = dict(params)

    def _get(self, name: str):
        if name not in self.params:
            raise BadInputError(f"stored trial has no parameter '{name}'; the search space changed since it ran")
        return self.params[name]

    def suggest_categorical(self, name, choices):
        return self._get(name)

    def suggest_float(self, name, low, high, *, step=None, log=False):
        return self._get(name)

    def suggest_int(self, name, low, high, *, step=1, log=False):
        return self._get(name)


def describe(space: Space, baseline_kinds: dict[str, str] | None = None) -> list[str]:
    """Lines for `pilotopt search --show-space`."""
    lines = [f"baselines: {', '.join(space.baselines)}"
             + (f" (this run has {', '.join(f'{b} ({k})' for b, k in baseline_kinds.items())})" if baseline_kinds else "")]
    for slot in space.slots:
        lines.append(f"slot {slot.name}{' (optional)' if slot.optional else ''}:")
        for o in slot.options:
            if o.technique is None:
                lines.append("  none")
                continue
            ps = ", ".join(f"{k} {_shown(p)}" for k, p in o.params.items())
            lines.append(f"  {o.technique}{': ' + ps if ps else ''}")
    return lines


def _shown(p: Param) -> str:
    if isinstance(p, Range):
        return f"in [{p.low}, {p.high}]{' log' if p.log else ''}{f' step {p.step}' if p.step else ''}"
    if isinstance(p, Choice):
        return "in {" + ", ".join(map(str, p.values)) + "}"
    return f"= {p.value}"
