"""pilotopt: optimize end-to-end driving models and measure every variant offline and in closed loop."""

__version__ = "0.1.0"


def _quiet_library_noise() -> None:
    """Keep lines a user cannot act on off every process that imports pilotopt, whichever module
    imports torch first: torchao's optional CUDA kernels a CPU wheel lacks ("Failed to load
    ..._C_mxfp8...so") and torch's pytree deprecation note. PILOTOPT_DEBUG shows them."""
    import logging
    import os

    if os.environ.get("PILOTOPT_DEBUG"):
        return
    for name in ("torchao", "torchao.kernel.intmm", "torch.utils._pytree"):
        logging.getLogger(name).setLevel(logging.ERROR)
    import warnings

    # torch's own pytree deprecation, raised while it unpickles its exported programs' tree specs
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*", category=FutureWarning)


def _register_gym_env() -> None:
    """Make `gymnasium.make("pilotopt/FollowLine-v0")` work after `import pilotopt`."""
    try:
        from pilotopt.gym_registration import register  # optional: gymnasium may be missing

        register()
    except ImportError:  # gymnasium missing: the rest of pilotopt still works
        return


_quiet_library_noise()
_register_gym_env()
