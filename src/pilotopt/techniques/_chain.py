"""Chains: techniques run one after another, each step's output artifact the next step's input.

    torch_channel_prune>onnx_int8_static            on the command line (`+` works too)
    variants: {prune_then_int8: {steps: [torch_channel_prune, onnx_int8_static],
                                 settings: {torch_channel_prune: {ratio: 0.5}}}}     in YAML

A single technique is a chain of one step. A technique registered with `register_chain` (e.g.
`tf_prune_dynamic_range`) is a named chain, expanded in place. The kinds are checked here, before
any work: step i+1 must accept what step i produces; when exactly one registered conversion bridges
the two it is inserted (and shows in the variant's name), otherwise the error names the two steps
and the conversions that would fit. A step that writes a training-framework model (a fine-tuned
Keras model) gets its `finish` conversion appended when it ends a chain."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field

from pilotopt.artifacts import kinds
from pilotopt.errors import BadInputError
from pilotopt.techniques._core import _TECHNIQUES, NoSettings, Technique
from pilotopt.techniques._settings import Settings, params, redeclare, renamed, settings_dict

SEPARATORS = (">", "+")
NAME_JOIN = "+"  # a chain's default variant (and folder) name: its steps joined by this


@dataclass(frozen=True)
class Step:
    technique: Technique
    settings: dict = field(default_factory=dict)  # the chain's own overrides for this step
    inserted: bool = False  # a conversion the chain added by itself
    origin: str | None = None  # the registered chain this step was expanded from


@dataclass(frozen=True)
class Chain:
    name: str  # the variant's name
    steps: tuple[Step, ...]
    description: str
    registered: bool = False  # a registered technique or registered chain of that name

    @property
    def framework(self) -> str:
        return self.steps[0].technique.framework

    @property
    def names(self) -> list[str]:
        return [s.technique.name for s in self.steps]

    @property
    def needs_data(self) -> bool:
        return any(s.technique.needs_data for s in self.steps)

    def takes(self, kind: str) -> bool:
        return self.steps[0].technique.takes(kind)


def is_spec(text: str) -> bool:
    return any(sep in text for sep in SEPARATORS)


def split_spec(text: str) -> list[str]:
    for sep in SEPARATORS[1:]:
        text = text.replace(sep, SEPARATORS[0])
    return [part.strip() for part in text.split(SEPARATORS[0])]


def _kind_text(kind: str) -> str:
    k = kinds().get(kind)
    return f"{k.description} ({kind})" if k is not None else kind


def _conversions(known: dict[str, Technique], produced: str, wanted: Technique) -> list[Technique]:
    return [t for t in known.values() if t.conversion and not t.is_chain and t.takes(produced)
            and wanted.takes(t.produces)]


def build_chain(step_names: list[str], known: dict[str, Technique], *, name: str | None = None,
                settings: dict[str, dict] | None = None, where: str = "chain") -> Chain:
    """The chain of `step_names` (registered chains expanded, conversions inserted, a finishing
    conversion appended), checked kind by kind. Raises BadInputError naming the steps that do not fit."""
    settings = dict(settings or {})
    label = name or SEPARATORS[0].join(step_names)
    if not step_names or any(not n for n in step_names):
        raise BadInputError(f"{where} '{label}' has an empty step; write steps as a>b>c")
    unknown = [n for n in step_names if n not in known]
    if unknown:
        raise BadInputError(f"{where} '{label}': unknown technique(s) {', '.join(unknown)}; "
                            "see `pilotopt list techniques`")
    stray = [k for k in settings if k not in step_names and not any(k in known[n].steps for n in step_names)]
    if stray:
        raise BadInputError(f"{where} '{label}': settings for {', '.join(stray)}, which is not one of its steps "
                            f"({', '.join(step_names)})")
    flat: list[Step] = []
    for n in step_names:
        tech = known[n]
        if tech.is_chain:
            for inner in tech.steps:
                own = {**tech.step_settings.get(inner, {}), **settings.get(inner, {})}
                flat.append(Step(known[inner], own, origin=n))
        else:
            flat.append(Step(tech, dict(settings.get(n, {}))))
    steps: list[Step] = [flat[0]]
    inserted = False
    for step in flat[1:]:
        prev = steps[-1].technique
        if not step.technique.takes(prev.produces):
            bridges = _conversions(known, prev.produces, step.technique)
            if len(bridges) != 1:
                fix = (f"insert one of {', '.join(b.name for b in bridges)} between them" if bridges else
                       f"no registered conversion turns {prev.produces} into what it takes "
                       f"({', '.join(step.technique.accepts)})")
                raise BadInputError(f"{where} '{label}': '{step.technique.name}' cannot take what '{prev.name}' "
                                    f"produces ({_kind_text(prev.produces)}); {fix}")
            steps.append(Step(bridges[0], {}, inserted=True))
            inserted = True
        steps.append(step)
    named = [s.technique.name for s in steps] if inserted else list(step_names)  # what the name shows
    last = steps[-1].technique
    if last.finish:
        steps.append(Step(_finish_of(last, known), {}, inserted=True))
    single = len(step_names) == 1
    if name is None:
        name = step_names[0] if single else NAME_JOIN.join(named)
    if single and known[step_names[0]].description and name == step_names[0]:
        description = known[step_names[0]].description
    else:
        description = " -> ".join(s.technique.name for s in steps)
    return Chain(name=name, steps=tuple(steps), description=description,
                 registered=single and name == step_names[0])


def _finish_of(tech: Technique, known: dict[str, Technique]) -> Technique:
    fin = known.get(tech.finish or "")
    if fin is None:
        raise RuntimeError(f"technique '{tech.name}' names an unregistered finishing conversion '{tech.finish}'")
    return fin


def plan_chains(items, known: dict[str, Technique], variants: dict | None = None) -> list[Chain]:
    """Technique names, `a>b` specs and named YAML variants -> chains, in the order given (named
    variants last), each name once. BadInputError for anything unknown or unfit, before any work."""
    chains: dict[str, Chain] = {}
    for item in items:
        c = build_chain(split_spec(item) if is_spec(item) else [item], known, where="chain" if is_spec(item)
                        else "technique")
        chains.setdefault(c.name, c)
    for vname, spec in (variants or {}).items():
        c = chain_from_mapping(str(vname), spec, known)
        if c.name in chains and chains[c.name].names != c.names:
            raise BadInputError(f"variant '{vname}' has the name of another variant; rename it")
        chains[c.name] = c
    return list(chains.values())


def chain_from_mapping(name: str, spec, known: dict[str, Technique]) -> Chain:
    """A YAML variant `{steps: [a, b], settings: {a: {k: v}}}` (or a bare list of steps, or `a>b`)."""
    where = f"variant '{name}'"
    if isinstance(spec, str):
        spec = {"steps": split_spec(spec)}
    elif isinstance(spec, list):
        spec = {"steps": spec}
    if not isinstance(spec, dict) or not isinstance(spec.get("steps"), list):
        raise BadInputError(f"{where} must be a mapping with 'steps: [technique, ...]' (and optional 'settings:')")
    extra = set(spec) - {"steps", "settings", "description"}
    if extra:
        raise BadInputError(f"{where}: unknown key(s) {', '.join(sorted(extra))}; use steps, settings, description")
    settings = spec.get("settings") or {}
    if not isinstance(settings, dict) or not all(isinstance(v, dict) or v is None for v in settings.values()):
        raise BadInputError(f"{where}: settings must map step names to {{key: value}}")
    if "/" in name or name.startswith(".") or not name.strip():
        raise BadInputError(f"{where}: a variant name is a folder name; use letters, digits, _ and -")
    chain = build_chain([str(s) for s in spec["steps"]], known, name=name,
                        settings={str(k): dict(v or {}) for k, v in settings.items()}, where=where)
    if spec.get("description"):
        chain = dataclasses.replace(chain, description=str(spec["description"]))
    return chain


def register_chain(name: str, steps: tuple[str, ...], *, description: str, step_settings: dict | None = None,
                   order: int = 100) -> None:
    """Register a named chain under `name`, listed with the techniques. Its settings are the union of
    its steps' settings fields (a key goes to every step that has it)."""
    missing = [s for s in steps if s not in _TECHNIQUES]
    if missing:
        raise RuntimeError(f"chain '{name}': register {', '.join(missing)} first (import their modules)")
    techs = [_TECHNIQUES[s] for s in steps]
    fields, seen = [], set()
    for t in techs:
        for p in params(t.settings_cls):
            if p.name not in seen:  # the first step's declaration (and default) of a shared key
                seen.add(p.name)
                fields.append((p.name, p.type, redeclare(p)))
    ordered = tuple(dict.fromkeys(pair for t in techs for pair in getattr(t.settings_cls, "_ordered", ())))
    settings_cls = dataclasses.make_dataclass(f"{name.title().replace('_', '')}Settings", fields, bases=(Settings,),
                                              namespace={"_ordered": ordered}, frozen=True) if fields else NoSettings
    first = techs[0]
    _TECHNIQUES[name] = Technique(name=name, framework=first.framework, runtime=techs[-1].runtime,
                                  description=description, settings_cls=settings_cls, apply=None,
                                  available=first.available, needs_data=any(t.needs_data for t in techs),
                                  module=techs[-1].module, order=order, accepts=first.accepts,
                                  produces=techs[-1].produces, finish=techs[-1].finish, steps=tuple(steps),
                                  step_settings={k: dict(v) for k, v in (step_settings or {}).items()})


def step_overrides(chain: Chain, index: int, layers: dict[str, dict]) -> dict:
    """Settings overrides of step `index`: the user's per-technique layer, then the chain's own
    settings for the step, then keys given for the registered chain's name (to every step having them)."""
    step = chain.steps[index]
    tech = step.technique
    values = renamed(layers.get(tech.name, {}), f"technique '{tech.name}'")
    values.update(renamed(step.settings, f"technique '{tech.name}'"))
    if step.origin and step.origin in layers:
        own = {p.name for p in params(tech.settings_cls)}
        values.update({k: v for k, v in renamed(layers[step.origin], f"technique '{step.origin}'").items() if k in own})
    return values


def chain_key(parent_key: str, technique: str, settings, seed: int) -> str:
    """The cache key of a chain prefix: its input's key, the step, its settings and the seed."""
    doc = {"input": parent_key, "step": technique, "settings": settings_dict(settings), "seed": seed}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


def root_key(digest: str, contract_digest: str, arch: str | None, arch_args: dict | None) -> str:
    doc = {"artifact": digest, "contract": contract_digest, "arch": arch, "arch_args": arch_args or {}}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()
