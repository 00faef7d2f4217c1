"""Job functions for tests/test_executors.py. They live in their own module because spawn
processes and Ray workers import a job function by name: it cannot be defined in a test."""

import os
import signal
import time


def job(spec: dict) -> dict:
    """{"x": n} -> {"status": "ok", "y": 2n, "pid": ...}; "mode" "raise" or "segv" fails on purpose,
    "sleep" (seconds) makes jobs overlap when several run at once."""
    time.sleep(spec.get("sleep", 0))
    if spec.get("mode") == "raise":
        raise ValueError(f"job {spec['x']} refused\nsecond line")
    if spec.get("mode") == "segv":
        os.kill(os.getpid(), signal.SIGSEGV)
        time.sleep(10)  # never reached: the signal kills the process
    return {"status": "ok", "y": spec["x"] * 2, "pid": os.getpid()}


def drive_first_then_die(job: dict) -> list:
    """Drives the variant's first drive (its record is written), then the worker is SIGKILLed, as
    the OOM killer or a crashing runtime would do halfway through a variant's drives."""
    from pilotopt.pipeline.drive_jobs import drive_variant

    drive_variant({**job, "drives": job["drives"][:1]})
    os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(10)
    return []
