"""Placeholder: replaced by the real layout."""
from pilotopt.sim.circuits import CircuitSpec

CIRCUIT = CircuitSpec(
    name="simple",
    control=((0, 0), (100, 0), (140, 30), (120, 70), (60, 60), (20, 90), (-30, 60)),
    length=463.0,
    description="placeholder",
)
