"""Models trained elsewhere (tests/_dls_models.py builds them as DLS saves them) through the commands a
user runs on them: `pilotopt sim drive --model` and `pilotopt run --model`, with their presets."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from _dls_models import CASES, cli  # noqa: E402


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_sim_drive_a_dls_model(case, dls, tmp_path):
    file, arch, preset, _ = CASES[case]
    r = cli("sim", "drive", "--model", str(dls["root"] / file), "--input", preset, "--circuit", "simple",
             "--timeout", "3", "--json", str(tmp_path / "run.json"), *(["--arch", arch] if arch else []))
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stdout + r.stderr
    doc = json.loads((tmp_path / "run.json").read_text())
    assert doc["brain"]["input_contract"].startswith(preset) and doc["metrics"]["completed_distance"] >= 0


RUN = """\
profile: quick
threads: 1
data: {{path: [{data}], test_circuits: [simple]}}
techniques: [{techniques}]
offline: {{max_frames: 24, min_calls: 5, min_seconds: 0.05, throughput_batch: 8, peak_seconds: 0}}
closed_loop: {{timeout_s: 2.0, repeats: 1, conditions: []}}
"""
RUN_TECHNIQUES = {"state_dict": "torch, onnx_fp32", "torchscript": "torch", "onnx": "onnx_fp32", "lstm": "torch",
                  "keras_h5": "keras", "saved_model": "tflite_fp32"}


@pytest.mark.slow
# run --model is kind-agnostic past open_artifact (the other kinds go through optimize, evaluate and sim
# drive above and in test_own_models*.py): one PyTorch state dict, one Keras .h5, one NCHW ONNX
@pytest.mark.parametrize("case", ["state_dict", "keras_h5", "onnx"])
def test_run_from_a_given_model(case, dls, tiny_data, tmp_path):
    file, arch, preset, _ = CASES[case]
    cfg = tmp_path / "given.yaml"
    cfg.write_text(RUN.format(data=tiny_data, techniques=RUN_TECHNIQUES[case]))
    r = cli("run", "--config", str(cfg), "--out", str(tmp_path / "run"), "--model", str(dls["root"] / file),
             "--input", preset, "--no-must-complete", *(["--arch", arch] if arch else []), timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert not (tmp_path / "run" / "train").exists()  # training skipped
    report = (tmp_path / "run" / "report" / "report.md").read_text()
    assert "the given model" in report and file in report
    results = json.loads((tmp_path / "run" / "report" / "results.json").read_text())
    names = [n.strip() for n in RUN_TECHNIQUES[case].split(",")]
    assert all(any(v["name"] == n and v["status"] == "ok" for v in results["variants"]) for n in names), names
    drives = [d for d in results["closed_loop"] if d.get("status") == "ok"]
    assert {d["variant"] for d in drives} == set(names)
    # the recommended variant, written for each deploy target that runs it, and why not for the others
    deploy = tmp_path / "run" / "report" / "deploy"
    doc = json.loads((deploy / "deploy.json").read_text())
    assert set(doc["targets"]) == {"edge", "behavior-metrics"}
    assert all(("files" in t) != ("not_written" in t) for t in doc["targets"].values())
    if case == "state_dict":  # Behavior Metrics' torch brain feeds ToTensor (NCHW / 255) into its TorchScript
        x = torch.randint(0, 256, (2, 3, 66, 200)).float() / 255  # ToTensor of uint8 pixels
        with torch.no_grad():
            expected = dls["net"](x).numpy()
        bm = doc["targets"]["behavior-metrics"]
        edge = doc["targets"]["edge"]
        if "files" in bm:  # the torch baseline: TorchScript over the model, outputs already normalized
            script = deploy / "behavior-metrics" / next(f for f in bm["files"] if f.endswith(".pt"))
            got = torch.jit.load(str(script))(x).detach().numpy()
        else:  # onnx_fp32: the edge folder holds the NCHW ONNX as produced
            import onnxruntime as ort

            manifest = json.loads((deploy / "edge" / "deploy.json").read_text())
            sess = ort.InferenceSession(str(deploy / "edge" / manifest["model"]))
            got = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
            assert "files" in edge
        np.testing.assert_allclose(got, expected, atol=1e-4)
