"""Actuator lag: speed and turn rate follow the command with a first-order time constant
(sim.vehicle), as a real drivetrain and steering do."""

from __future__ import annotations

from dataclasses import replace

from pilotopt.sim.conditions import register_condition

register_condition("lag", lambda c, level: replace(c, actuator_lag=float(level)),
                   "first-order actuator lag", level="time constant in seconds", default_level=0.1)
