"""The simulator's looks as conditions: the world is rendered differently (sim.appearance)."""

from __future__ import annotations

from dataclasses import replace

from pilotopt.sim.appearance import variant_names
from pilotopt.sim.conditions import register_condition


def _with_look(name: str):
    def apply(cond, _level):
        look = name if cond.look == "default" else f"{cond.look}+{name}"
        return replace(cond, look=look)

    return apply


for _name in variant_names():
    if _name != "default":
        register_condition(_name, _with_look(_name), f"the world rendered with the '{_name}' look")
