"""`pilotopt bench scaling`: each stage measured in a fresh process (its memory, CPU and wall time
seen from outside), and bad settings refused in one line."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pilotopt.bench.scaling import measured
from pilotopt.errors import BadInputError


def allocate_and_spin(megabytes: int, seconds: float) -> dict:
    """Touch `megabytes` of memory, then keep a core busy for `seconds`."""
    import time

    import numpy as np

    block = np.ones(megabytes * 1024 * 1024, dtype=np.uint8)
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass
    return {"sum": int(block[::4096].sum())}


def fails() -> dict:
    raise ValueError("the dataset folder is read-only")


def test_a_stage_is_measured_from_outside_its_process():
    small = measured(allocate_and_spin, 16, 0.6)
    big = measured(allocate_and_spin, 600, 0.6)
    assert big["sum"] == 600 * 256 and small["sum"] == 16 * 256  # the stage's own result comes back
    assert big["peak_rss_gb"] - small["peak_rss_gb"] > 0.45  # the 600 MB block, seen by the sampler
    assert big["cpu_s"] >= 0.5 and big["wall_s"] >= big["cpu_s"] * 0.9


def test_a_failing_stage_is_one_line():
    with pytest.raises(BadInputError) as err:
        measured(fails)
    assert "read-only" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("args, needle", [(["--frames", "10k"], "--frames"), (["--frames", "50"], "at least 100"),
                                          (["--frameworks", "jax"], "--frameworks")])
def test_bad_settings_are_one_line_errors(args, needle, tmp_path):
    r = subprocess.run([sys.executable, "-m", "pilotopt", "bench", "scaling", *args, "--out", str(tmp_path / "x.json")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and needle in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert not (tmp_path / "x.json").exists()
