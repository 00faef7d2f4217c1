"""`pilotopt bench techniques`: variants timed side by side, ratios against the baseline, and each
variant against the unchanged baseline in its own runtime (speed claims live here, not in tests)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from _fixtures import torch_checkpoint


@pytest.fixture(scope="module")
def variants(tmp_path_factory, tiny_data):
    from pilotopt.techniques import optimize

    root = tmp_path_factory.mktemp("bench_tech")
    data = tiny_data
    model = root / "model.pt"
    torch_checkpoint(model, "pilotnet")
    out = root / "variants"
    vs = optimize(model, ["torch", "torch_channel_prune", "onnx_fp32", "tensorrt_fp32"], [data], out,
                  cache_dir=root / "cache", test_circuits=("simple",),
                  settings={"torch_channel_prune": {"epochs": 1, "max_train_frames": 64}})
    assert [v.status for v in vs] == ["ok", "ok", "ok", "skipped"], [(v.name, v.reason) for v in vs]
    return {"root": root, "data": data, "out": out}


def test_bench_writes_ratios_and_same_runtime_pairs(variants):
    out_json = variants["root"] / "bench.json"
    proc = subprocess.run([sys.executable, "-m", "pilotopt", "bench", "techniques", "--variants", str(variants["out"]),
                           "--data", str(variants["data"]), "--cache-dir", str(variants["root"] / "cache"),
                           "--out", str(out_json), "--frames", "32", "--rounds", "2", "--min-calls", "5",
                           "--min-seconds", "0.05", "--speedup-goal", "1.0", "--mse-tolerance", "100",
                           "--test-circuits", "simple", "--peak-seconds", "0.2"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = json.loads(out_json.read_text())
    rows = {r["name"]: r for r in doc["rows"]}
    onnx = rows["onnx_fp32"]  # the runtime's per-call floor, measured in the same run
    assert 0 < onnx["floor_ms"] == doc["machine"]["peaks"]["call_floors"]["floors_ms"]["onnxruntime"]
    assert onnx["above_floor_ms"] == pytest.approx(onnx["p50_ms"] - onnx["floor_ms"])
    assert rows["tensorrt_fp32"]["status"] == "skipped" and "p50_ms" not in rows["tensorrt_fp32"]
    for name in ("torch", "torch_channel_prune", "onnx_fp32", "torch@torchscript"):
        r = rows[name]
        assert r["status"] == "ok" and len(r["p50_rounds_ms"]) == 2 and r["p50_ms"] > 0 and r["mse"] >= 0
        assert r["speedup"] == pytest.approx(rows["torch"]["p50_ms"] / r["p50_ms"])
    assert rows["torch"]["speedup"] == 1.0 and rows["onnx_fp32"]["mse_ratio"] == pytest.approx(1.0, abs=1e-4)
    pair = next(p for p in doc["claims"]["same_runtime"] if p["name"] == "torch_channel_prune")
    assert pair["reference"] == "torch@torchscript" and pair["runtime"] == "torchscript"
    assert pair["faster"] == (rows["torch_channel_prune"]["p50_ms"] < rows["torch@torchscript"]["p50_ms"])
    # with a goal of 1x and a loose tolerance, whatever beat the baseline is listed, fastest first
    listed = [c["name"] for c in doc["claims"]["fast_and_accurate"]]
    beat = [n for n, r in rows.items() if n != "torch" and r.get("speedup", 0) >= 1.0]
    assert sorted(listed) == sorted(beat)


def test_bench_needs_the_baseline_variant(variants, tmp_path):
    import shutil

    part = tmp_path / "v"
    shutil.copytree(variants["out"] / "onnx_fp32", part / "onnx_fp32")
    proc = subprocess.run([sys.executable, "-m", "pilotopt", "bench", "techniques", "--variants", str(part),
                           "--data", str(variants["data"]), "--out", str(tmp_path / "b.json")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "no ok baseline variant torch" in proc.stderr and "Traceback" not in proc.stderr
