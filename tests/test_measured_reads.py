"""Measured values are read as typed record fields, not by string keys (scripts/measured_reads.py,
read with `ast`): a module outside pilotopt.records that reads `row["mse_mean"]` fails here."""

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "measured_reads.py"


@pytest.fixture(scope="module")
def found():
    spec = importlib.util.spec_from_file_location("measured_reads", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.scan()


def test_no_module_reads_a_measured_value_by_a_string_key(found):
    assert not found, "read these as record fields (pilotopt.records):\n" + "\n".join(
        f"{f}:{line} {key}" for f, reads in found.items() for line, key in reads)


def test_the_scan_sees_a_string_key_read(tmp_path):
    """The check can fail: a read by key is found, a write is not."""
    spec = importlib.util.spec_from_file_location("measured_reads", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    src = tmp_path / "m.py"
    src.write_text("def f(row, out):\n    out['mse_mean'] = 1\n    return row['mse_mean'], row.get('p50_ms')\n")
    assert module.reads(src, module.measured_fields()) == [(3, "mse_mean"), (3, "p50_ms")]
