"""pilotopt: optimize end-to-end driving models and measure every variant offline and in closed loop."""

__version__ = "0.1.0"


def _register_gym_env() -> None:
    """Make `gymnasium.make("pilotopt/FollowLine-v0")` work after `import pilotopt`."""
    try:
        from pilotopt.gym_registration import register

        register()
    except ImportError:  # gymnasium missing: the rest of pilotopt still works
        return


_register_gym_env()
