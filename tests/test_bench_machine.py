"""`pilotopt bench machine` and the MACs / peak-share figures of the latency tables."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from pilotopt.bench.machine import measure_peaks
from pilotopt.evaluate.results import precision_of, variant_macs


def test_peaks_are_measured_with_both_runtimes_kernels():
    doc = measure_peaks(threads=1, seconds=0.1, size=128)
    assert not doc["errors"], doc["errors"]
    assert set(doc["kernels"]) >= {"onnxruntime MatMul fp32", "onnxruntime MatMulInteger u8s8", "torch.mm fp32"}
    assert all(v > 0 for v in doc["kernels"].values())
    assert doc["fp32_gmacs"] == max(v for k, v in doc["kernels"].items() if "fp32" in k)


def test_the_command_writes_json(tmp_path):
    out = tmp_path / "m.json"
    proc = subprocess.run([sys.executable, "-m", "pilotopt", "bench", "machine", "--seconds", "0.1", "--size", "128",
                           "--threads", "1", "--out", str(out)], capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, COLUMNS="120"))
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(out.read_text())
    assert doc["fp32_gmacs"] > 0 and doc["int8_gmacs"] > 0 and "peak on 1 thread(s)" in proc.stdout
    assert "call_floors" not in doc  # the floors only with --floors


def test_floors_are_the_per_call_cost_of_every_runtime(tmp_path):
    """A flatten + dense model with PilotNet's input through each runtime's predictor: what a batch-1
    call costs before any MACs (no library noise on the way)."""
    out = tmp_path / "m.json"
    proc = subprocess.run([sys.executable, "-m", "pilotopt", "bench", "machine", "--seconds", "0.1", "--size", "128",
                           "--threads", "1", "--floors", "--out", str(out)], capture_output=True, text=True,
                          timeout=300, env=dict(os.environ, COLUMNS="120"))
    assert proc.returncode == 0, proc.stderr
    floors = json.loads(out.read_text())["call_floors"]
    assert set(floors["floors_ms"]) == {"onnxruntime", "openvino", "litert", "executorch", "torchscript"}, \
        floors["errors"]
    assert all(0 < ms < 50 for ms in floors["floors_ms"].values()) and all(n >= 50 for n in floors["calls"].values())
    assert "ms per batch-1 call (floor)" in proc.stdout
    assert "Warning" not in proc.stderr, proc.stderr[-2000:]


def test_macs_come_from_the_structure_changing_step_else_the_architecture():
    from pilotopt.models import get_model_spec

    assert variant_macs({"macs_after": 7_000_000}) == (7_000_000, "record macs_after")
    assert variant_macs({"student_macs": 5}, "pilotnet") == (5, "record student_macs")
    assert variant_macs({}, "pilotnet") == (get_model_spec("pilotnet").macs, "architecture pilotnet")
    assert variant_macs({}, None) == (None, "unknown")
    assert precision_of("torch_distill+onnx_int8_static") == "int8"
    assert precision_of("tf_prune") == "fp32" and precision_of("x", {"precision": "int8"}) == "int8"
