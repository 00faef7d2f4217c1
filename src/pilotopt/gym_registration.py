"""Registers `pilotopt/FollowLine-v0` with Gymnasium without importing the simulator, so that
`import pilotopt` stays cheap for every worker process that never drives."""

ENV_ID = "pilotopt/FollowLine-v0"


def register() -> None:
    import gymnasium as gym

    if ENV_ID not in gym.registry:
        gym.register(id=ENV_ID, entry_point="pilotopt.sim.gym_env:FollowLineEnv")
