"""The brain interface every driver implements: built-in controllers and model runtimes alike."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from pilotopt.sim.camera import View

if TYPE_CHECKING:
    from pilotopt.sim.simulation import Simulation


class Brain:
    """A frame in, (v, w) out.

    - `view`: the camera pixels the brain consumes (None: it reads no camera, like the expert).
    - `step(obs)`: one control step; returns (v m/s, w rad/s).
    - `last_inference_s`: the model call alone in the last step (None if the brain has no model);
      the closed loop measures the whole step itself.
    - `privileged`: the brain reads the true state from the simulation given to `reset`.
    """

    name = "brain"
    view: View | None = None
    privileged = False

    def __init__(self) -> None:
        self.last_inference_s: float | None = None

    def reset(self, sim: "Simulation") -> None:
        """Called at the start of every run."""

    def step(self, obs: np.ndarray | None) -> tuple[float, float]:
        raise NotImplementedError

    @classmethod
    def step_many(cls, brains: list["Brain"], obs: list) -> tuple[list[tuple[float, float]], float | None]:
        """One step of several cars' brains (sim.closed_loop.drive_many): their commands, and the
        model call's share per car (None: no model). Each brain steps on its own here; a brain
        whose calls can be batched overrides this."""
        commands = [b.step(o) for b, o in zip(brains, obs)]
        times = [b.last_inference_s for b in brains]
        return commands, None if any(t is None for t in times) else sum(times) / len(times)

    def describe(self) -> dict:
        return {"name": self.name, "view": None if self.view is None else self.view.name}
