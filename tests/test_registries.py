"""Every registry, whole (as timm and Gymnasium test theirs): each registered technique, artifact kind,
runtime, contract preset, circuit, condition, model and architecture is checked for what holds for
all of them, so a new one is covered the day it registers. Fast: no training, no conversions."""

from __future__ import annotations

import json

import pytest

from pilotopt.artifacts import kinds
from pilotopt.contracts import contract_names, from_dict, get_contract
from pilotopt.models import get_model_spec, model_names
from pilotopt.models.arch import arch_names, resolve_arch
from pilotopt.runtimes import runtime_names
from pilotopt.sim.circuits import circuit_names, circuit_spec, load_circuit
from pilotopt.sim.conditions import condition_kinds, parse_condition
from pilotopt.techniques import techniques
from pilotopt.techniques._settings import params, settings_dict

# the package's own techniques (test files register throwaway ones while the suite is collected)
TECHNIQUES = [n for n, t in techniques().items() if t.module.startswith("pilotopt.techniques")]
KINDS = list(kinds())
RUNTIMES = runtime_names()


def test_the_registries_are_found():
    assert len(TECHNIQUES) >= 40 and len(KINDS) >= 13 and len(RUNTIMES) >= 11
    assert contract_names() and circuit_names() and condition_kinds() and model_names() and arch_names()


# -- techniques ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", TECHNIQUES)
def test_technique_settings_are_declared_and_round_trip_through_json(name):
    tech = techniques()[name]
    default = tech.default_settings()
    assert tech.settings == params(tech.settings_cls)
    for p in tech.settings:  # declared once: type, default (valid under its own bounds), one-line description
        assert p.type in (bool, int, float, str) and isinstance(p.default, p.type), p.name
        assert p.description and "\n" not in p.description and getattr(default, p.name) == p.default, p.name
    doc = json.loads(json.dumps(settings_dict(default)))  # what variant.json records
    assert tech.make_settings(doc) == default
    as_typed = {p.name: (p.default if p.type is str else str(p.default)) for p in tech.settings}
    assert tech.make_settings(as_typed) == default  # what --set technique.key=value gives


@pytest.mark.parametrize("name", TECHNIQUES)
def test_technique_names_registered_kinds_runtimes_and_techniques(name):
    tech = techniques()[name]
    known = techniques()
    assert tech.description and tech.framework in ("tf", "torch")
    assert tech.accepts and set(tech.accepts) <= set(KINDS), set(tech.accepts) - set(KINDS)
    assert tech.produces in KINDS, tech.produces
    assert tech.runtime in RUNTIMES
    assert tech.finish is None or tech.finish in known
    assert set(tech.steps) <= set(known) and set(tech.step_settings) <= set(tech.steps)
    ok, why = tech.available()
    assert isinstance(ok, bool) and (ok or why)


# -- artifact kinds and runtimes -------------------------------------------------------------------
@pytest.mark.parametrize("name", KINDS)
def test_kind_is_run_by_a_registered_runtime(name):
    kind = kinds()[name]
    assert kind.name == name and kind.description and callable(kind.detect)
    assert kind.framework in ("torch", "tf", "portable")
    assert kind.runtime in RUNTIMES


@pytest.mark.parametrize("name", RUNTIMES)
def test_runtime_runs_some_kind_or_technique(name):
    used = {k.runtime for k in kinds().values()} | {t.runtime for t in techniques().values()}
    assert name in used


# -- contracts -------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", contract_names())
def test_contract_round_trips_through_its_dict(name):
    c = get_contract(name)
    assert c.name == name and c.description
    doc = json.loads(json.dumps(c.to_dict()))  # as variant.json keeps it
    back = from_dict(doc)
    assert back.to_dict() == c.to_dict() and back.digest == c.digest


# -- circuits --------------------------------------------------------------------------------------
def test_every_circuit_the_data_formats_name_is_registered():
    from pilotopt.data.formats import KNOWN_CIRCUITS

    assert set(KNOWN_CIRCUITS) <= set(circuit_names())


@pytest.mark.parametrize("name", circuit_names())
def test_circuit_validates_in_both_directions(name):
    from pilotopt.sim.track import road_clearance, validate_track

    assert circuit_spec(name).name == name and circuit_spec(name).description
    ccw, cw = load_circuit(name, "anticlockwise"), load_circuit(name, "clockwise")
    validate_track(ccw, name)  # no self-crossing, corners wide enough, road never overlaps
    assert road_clearance(ccw) >= 9.0
    assert ccw.is_anticlockwise and not cw.is_anticlockwise and cw.length == pytest.approx(ccw.length)


# -- conditions ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(condition_kinds()))
def test_condition_parses_its_own_spec(name):
    kind = condition_kinds()[name]
    assert kind.description
    cond = parse_condition(name)  # a level-taking kind alone takes its default level
    assert parse_condition(cond.spec) == cond
    if kind.level is not None:
        assert kind.default_level is not None and cond.spec == f"{name}:{kind.default_level:g}"
        assert parse_condition(f"{name}:{2 * kind.default_level:g}").spec == f"{name}:{2 * kind.default_level:g}"


# -- models and architectures ----------------------------------------------------------------------
@pytest.mark.parametrize("name", model_names())
def test_model_spec_is_consistent(name):
    spec = get_model_spec(name)
    assert spec.name == name and spec.description and spec.num_params > 0 and spec.macs > 0
    assert len(spec.batch_shape(2)) in (4, 5) and spec.batch_shape(2)[0] == 2


@pytest.mark.parametrize("name", arch_names())
def test_architecture_builds_and_runs_one_frame(name):
    import torch

    arch = resolve_arch(name)
    net = arch.build(seed=0)
    shape = arch.declared_shape
    assert shape is not None, name
    with torch.no_grad():
        y = net(torch.zeros((1, *shape)))
    assert tuple(y.shape) == (1, 2)
    if name in model_names():
        assert sum(p.numel() for p in net.parameters()) == get_model_spec(name).num_params
