"""Measured values are read as typed record fields, not by string keys (scripts/measured_reads.py,
read with `ast`): a module outside pilotopt.records that reads `row["mse_mean"]` fails here."""

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "measured_reads.py"

# Modules still reading a measured value by a string key: the benchmarks' own rows, the simulator's
# path and timing figures before they become DriveMetrics (and the ROS bridge's own metrics),
# evaluate's worker reply, the drive job settings, a technique's variant record and the breaking
# point search's own probe verdicts (records to type next).
# A module leaves this set when it is converted; the test fails when one is clean and still listed.
PENDING = {"bench/techniques.py", "bench/runtimes.py", "sim/closed_loop.py",
           "sim/ros_bridge.py", "cli/sim.py", "evaluate/harness.py", "evaluate/worker.py", "evaluate/results.py",
           "pipeline/drive_jobs.py", "breaking_point.py",
           "cli/optimize.py", "search/sensitivity.py", "techniques/_runner.py"}


@pytest.fixture(scope="module")
def found():
    spec = importlib.util.spec_from_file_location("measured_reads", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.scan()


def test_no_new_module_reads_a_measured_value_by_a_string_key(found):
    new = {f: reads for f, reads in found.items() if f not in PENDING}
    assert not new, "read these as record fields (pilotopt.records):\n" + "\n".join(
        f"{f}:{line} {key}" for f, reads in new.items() for line, key in reads)


def test_the_pending_list_only_holds_modules_still_to_convert(found):
    done = sorted(PENDING - set(found))
    assert not done, f"remove {done} from PENDING in {Path(__file__).name}: they read no measured value by key"


def test_the_scan_sees_a_string_key_read(tmp_path):
    """The check can fail: a read by key is found, a write is not."""
    spec = importlib.util.spec_from_file_location("measured_reads", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    src = tmp_path / "m.py"
    src.write_text("def f(row, out):\n    out['mse_mean'] = 1\n    return row['mse_mean'], row.get('p50_ms')\n")
    assert module.reads(src, module.measured_fields()) == [(3, "mse_mean"), (3, "p50_ms")]
