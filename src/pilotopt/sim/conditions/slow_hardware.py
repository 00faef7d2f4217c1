"""Slower hardware: the brain's latency (realtime mode) is multiplied by the level, so a variant
measured here drives as it would on a board N times slower."""

from __future__ import annotations

from dataclasses import replace

from pilotopt.sim.conditions import register_condition

register_condition("slow", lambda c, level: replace(c, latency_scale=c.latency_scale * float(level)),
                   "hardware N times slower (realtime latency x N)", level="latency scale N", default_level=5.0)
