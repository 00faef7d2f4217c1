"""Gymnasium environment `pilotopt/FollowLine-v0`: camera frame in, (v, w) out, lockstep timing.

Reward is metres of progress along the centre line per step minus a penalty on the lateral
offset, so an agent is paid for driving the lap the way the metrics score it."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from pilotopt.preprocess import V_MAX, W_MAX, W_MIN
from pilotopt.sim.camera import CameraModel, FullFrameView, PilotNetView
from pilotopt.sim.circuits import load_circuit
from pilotopt.sim.simulation import SimSettings, Simulation, Termination

from pilotopt.gym_registration import ENV_ID, register  # noqa: F401  (re-exported)


class FollowLineEnv(gym.Env):
    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(self, circuit: str = "simple", direction: str = "anticlockwise",
                 observation: str = "full", look: str = "default", laps: int = 1,
                 random_start: bool = False, lateral_penalty: float = 0.2,
                 render_mode: str | None = None):
        if observation not in ("full", "pilotnet"):
            raise ValueError("observation must be 'full' (640x480) or 'pilotnet' (66x200)")
        self.track = load_circuit(circuit, direction)
        self.camera = CameraModel()
        self.view = FullFrameView(self.camera) if observation == "full" else PilotNetView(self.camera)
        shape = (self.camera.height, self.camera.width, 3) if observation == "full" else (66, 200, 3)
        self.observation_space = spaces.Box(0, 255, shape=shape, dtype=np.uint8)
        self.action_space = spaces.Box(np.array([0.0, W_MIN], dtype=np.float32),
                                       np.array([V_MAX, W_MAX], dtype=np.float32), dtype=np.float32)
        self.look, self.laps, self.random_start = look, laps, random_start
        self.lateral_penalty = lateral_penalty
        self.render_mode = render_mode
        self.sim: Simulation | None = None
        self._renderer = None

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        options = options or {}
        start = float(options.get("start_s", self.np_random.uniform(0, self.track.length)
                                  if self.random_start else 0.0))
        settings = SimSettings(laps=self.laps, start_s=start)
        self.sim = Simulation(self.track, self.camera, self.look, settings=settings,
                              seed=0, renderer=self._renderer)
        self._renderer = self.sim.renderer  # the ground field is built once per env
        return self.sim.observe(self.view), self._info()

    def step(self, action):
        if self.sim is None:
            raise RuntimeError("call reset() before step()")
        a = np.clip(np.asarray(action, dtype=np.float64).reshape(2), self.action_space.low,
                    self.action_space.high)
        before = self.sim.progress
        self.sim.step(float(a[0]), float(a[1]))
        lateral = abs(self.sim.records["lateral"][-1])
        reward = float(self.sim.progress - before - self.lateral_penalty * lateral)
        end = self.sim.termination
        terminated = end in (Termination.OFF_TRACK, Termination.LAPS)
        truncated = end in (Termination.TIMEOUT, Termination.STUCK)
        return self.sim.observe(self.view), reward, terminated, truncated, self._info()

    def render(self):
        if self.sim is None:
            return None
        return self.sim.frame()

    def _info(self) -> dict:
        sim = self.sim
        return {"lateral": float(sim.records["lateral"][-1]), "progress": float(sim.progress),
                "time": float(sim.time), "termination": sim.termination, "lap_times": list(sim.lap_times)}
