import gymnasium as gym
import numpy as np
from gymnasium.utils.env_checker import check_env

import pilotopt  # noqa: F401  (registers the environment)


def test_env_is_registered_and_passes_the_checker():
    env = gym.make("pilotopt/FollowLine-v0", observation="pilotnet")
    check_env(env.unwrapped, skip_render_check=False)
    env = gym.make("pilotopt/FollowLine-v0", circuit="monaco", direction="clockwise")
    obs, info = env.reset(seed=0)
    assert obs.shape == (480, 640, 3) and obs.dtype == np.uint8
    assert info["lateral"] == 0.0


def test_progress_reward_and_termination():
    env = gym.make("pilotopt/FollowLine-v0", observation="pilotnet")
    env.reset(seed=1)
    total = 0.0
    for _ in range(20):
        obs, reward, terminated, truncated, info = env.step(np.array([10.0, 0.0], dtype=np.float32))
        total += reward
        if terminated:
            break
    assert info["progress"] > 5.0
    # spinning hard leaves the road and terminates
    env.reset(seed=1)
    for _ in range(200):
        _, _, terminated, truncated, info = env.step(np.array([20.0, 7.1], dtype=np.float32))
        if terminated or truncated:
            break
    assert terminated and info["termination"] == "off_track"


def test_random_start_is_seeded():
    env = gym.make("pilotopt/FollowLine-v0", observation="pilotnet", random_start=True)
    a, _ = env.reset(seed=5)
    b, _ = env.reset(seed=5)
    c, _ = env.reset(seed=6)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
