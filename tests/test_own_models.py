"""Models trained elsewhere, built here exactly as DeepLearningStudio (DLS) and Behavior Metrics lay
them out and save them: a PyTorch PilotNet state dict (.ckpt), its TorchScript trace (.pth, traced
on DLS's transposed dummy input), an NCHW ONNX export, DLS's single-frame DeepestLSTMTinyPilotNet
state dict, and a Keras PilotNet with an input BatchNorm, 'same' padding and a (200, 66, 3)
declaration (.h5 and SavedModel). Each goes through optimize, evaluate, sim drive and run --model
with its preset, and its evaluated outputs equal the model computed by hand with the preset's
preprocessing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from pilotopt.errors import BadInputError  # noqa: E402

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)
EVAL = dict(threads=1, test_circuits="simple", min_calls=5, min_seconds=0.01, warmup_calls=1, warmup_seconds=0.0,
            throughput_batch=8, max_frames=None)


def _cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pilotopt", *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def dls(tmp_path_factory):
    """Every artifact a DLS / BM user has, with the preset and architecture it needs."""
    from pilotopt.models.arch import resolve_arch

    root = tmp_path_factory.mktemp("dls_models")
    rng = np.random.default_rng(0)
    net = resolve_arch("dls_pilotnet").build(0)
    with torch.no_grad():
        net.ln_1.running_mean.copy_(torch.tensor([0.4, 0.5, 0.45]))
        net.ln_1.running_var.copy_(torch.tensor([0.05, 0.08, 0.06]))
        net.fc_5.bias.copy_(torch.tensor([0.5, 0.5]))
        net.fc_5.weight.mul_(0.05)
    torch.save(net.state_dict(), root / "pilot_net_model_best_123.pth")
    torch.save(net.state_dict(), root / "pilot_net_model_123.ckpt")
    traced = torch.jit.trace(net, torch.rand(1, 3, 200, 66))  # DLS's optimize_models.py dummy input, transposed
    torch.jit.save(traced, root / "baseline.pth")
    torch.onnx.export(net, (torch.rand(2, 3, 66, 200),), str(root / "pilotnet_nchw.onnx"), dynamo=False,
                      input_names=["input"], output_names=["output"], dynamic_axes={"input": {0: "n"}, "output": {0: "n"}})
    lstm = resolve_arch("dls_deepest_lstm_tinypilotnet").build(1)
    with torch.no_grad():
        lstm.fc_3.bias.copy_(torch.tensor([0.5, 0.5]))
    torch.save(lstm.state_dict(), root / "DLT_net_model_123.ckpt")

    from pilotopt.frameworks import import_tf

    import_tf(2)
    import tf_keras as keras
    from tf_keras import layers as L

    k = keras.Sequential([L.BatchNormalization(epsilon=0.001, axis=-1, input_shape=(200, 66, 3)),
                          L.Conv2D(24, 5, strides=2, activation="relu", padding="same"),
                          L.Conv2D(36, 5, strides=2, activation="relu", padding="same"),
                          L.Conv2D(48, 5, strides=2, activation="relu", padding="same"),
                          L.Conv2D(64, 3, activation="relu", padding="same"),
                          L.Conv2D(64, 3, activation="relu", padding="same"),
                          L.Flatten(), L.Dense(32, activation="relu"), L.Dense(10, activation="relu"), L.Dense(2)])
    k.layers[0].set_weights([rng.uniform(0.5, 1.5, 3).astype("f"), rng.normal(0, 0.2, 3).astype("f"),
                             rng.normal(0, 0.3, 3).astype("f"), rng.uniform(0.5, 2.0, 3).astype("f")])
    kernel, _ = k.layers[-1].get_weights()
    k.layers[-1].set_weights([kernel, np.array([0.5, 0.5], "f")])  # outputs near 0.5 when fed as trained
    k.compile(optimizer="adam", loss="mse")  # saved as DLS saves it: compiled, with its optimizer
    k.save(root / "20230101_pilotnet_model_no_crop.h5")
    k.save(root / "pilotnet_savedmodel")
    return {"root": root, "net": net, "lstm": lstm, "keras_weights": k.get_weights()}


CASES = {  # name -> (file, arch, preset, techniques): three or more per preset, each kind of step once
    "state_dict": ("pilot_net_model_123.ckpt", "dls_pilotnet", "dls-torch",
                   "torch,onnx_fp32,torch_channel_prune,torch_distill,torch_static"),
    "torchscript": ("baseline.pth", None, "dls-torch", "torch,onnx_fp32,openvino_fp32"),
    "onnx": ("pilotnet_nchw.onnx", None, "dls-torch", "onnx_fp32,onnx_fp16,openvino_fp32"),
    "lstm": ("DLT_net_model_123.ckpt", "dls_deepest_lstm_tinypilotnet", "dls-torch", "torch,onnx_fp32,torch_prune_local"),
    "keras_h5": ("20230101_pilotnet_model_no_crop.h5", None, "dls-tf", "keras,tflite_fp32,tf_qat"),
    "saved_model": ("pilotnet_savedmodel", None, "dls-tf", "keras,tflite_fp32,tflite_float16"),
}


FINE_TUNED = ("torch_prune_local", "tf_qat", "torch_channel_prune", "torch_distill")


def _expected(case: str, dls: dict, tiny_data: Path, geometry) -> np.ndarray:
    """The test frames preprocessed by hand (crop / size from the preset, then the preset's scaling
    and layout written out here), through the model as its toolkit builds it."""
    from pilotopt.data import DataConfig, load_splits

    test = load_splits(DataConfig(roots=[tiny_data], test_circuits=("simple",), flip=False, oversample=1,
                                  geometry=geometry)).test
    images, labels = test.batch(np.arange(len(test)))
    x = images.astype(np.float32)
    if case in ("keras_h5", "saved_model"):
        import tf_keras as keras
        from tf_keras import layers as L

        ref = keras.Sequential([L.BatchNormalization(epsilon=0.001, axis=-1, input_shape=(66, 200, 3)),
                                *[L.Conv2D(f, ks, strides=s, activation="relu", padding="same")
                                  for f, ks, s in ((24, 5, 2), (36, 5, 2), (48, 5, 2), (64, 3, 1), (64, 3, 1))],
                                L.Flatten(), L.Dense(32, activation="relu"), L.Dense(10, activation="relu"), L.Dense(2)])
        ref.set_weights(dls["keras_weights"])
        return ref((x / 255.0 - IMAGENET_MEAN) / IMAGENET_STD, training=False).numpy()
    net = dls["lstm"] if case == "lstm" else dls["net"]
    with torch.no_grad():
        return net(torch.from_numpy(x / 255.0).permute(0, 3, 1, 2).contiguous()).numpy()


@pytest.fixture(scope="module")
def optimized(dls, tiny_data, tmp_path_factory):
    """Each DLS artifact optimized with its preset (at least three techniques) and evaluated."""
    from pilotopt.evaluate.harness import evaluate_artifacts
    from pilotopt.techniques import optimize

    out = {}
    for case, (file, arch, preset, names) in CASES.items():
        work = tmp_path_factory.mktemp(f"own_{case}")
        variants = optimize(dls["root"] / file, names, [tiny_data], work / "variants", arch=arch, contract=preset,
                            test_circuits=("simple",), threads=1, cache_dir=work / "cache",
                            settings={n: {"epochs": 1, "max_train_frames": 16} for n in FINE_TUNED if n in names})
        doc = evaluate_artifacts(work / "variants", [tiny_data], work / "eval", cache_dir=work / "cache", **EVAL)
        out[case] = {"variants": {v.name: v for v in variants}, "doc": doc, "work": work}
    return out


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_optimize_and_evaluate_with_the_preset(case, optimized, dls, tiny_data):
    from pilotopt.contracts import get_contract

    got = optimized[case]
    names = CASES[case][3].split(",")
    assert [got["variants"][n].status for n in names] == ["ok"] * len(names), \
        {n: got["variants"][n].reason for n in names}
    rows = {r["name"]: r for r in got["doc"]["variants"]}
    assert all(rows[n]["status"] == "ok" for n in names), {n: rows[n].get("reason") for n in names}
    preset = get_contract(CASES[case][2])
    geometry = preset.sized_to((3, 100, 50)).geometry if case == "lstm" else preset.geometry
    expected = _expected(case, dls, tiny_data, geometry)
    fp32 = {"state_dict": "torch", "torchscript": "torch", "onnx": "onnx_fp32", "lstm": "torch", "keras_h5": "keras",
            "saved_model": "keras"}[case]
    pred = np.load(got["work"] / "eval" / "variants" / f"{fp32}.pred.npy")
    np.testing.assert_allclose(pred, expected, atol=1e-5)
    assert rows[fp32]["outputs_out_of_range_share"] < 0.5  # the right preset keeps (v, w) in range
    for n in names:  # every variant was checked against the input model through the same contract
        assert got["variants"][n].contract["name"].startswith(CASES[case][2])
        diff = got["variants"][n].record["check_max_abs_diff"]
        tol = 1.0 if n in FINE_TUNED else 0.1 if n == "torch_static" else 0.06  # trained on / int8: close
        assert diff < tol, (n, diff)


@pytest.mark.slow
def test_channel_pruned_and_distilled_dls_models_stay_in_its_contract(optimized, tiny_data):
    """Both make a smaller model that takes the DLS model's own NCHW /255 input (a trace)."""
    v = optimized["state_dict"]["variants"]
    prune, distill = v["torch_channel_prune"].record, v["torch_distill"].record
    assert prune["macs_after"] < 0.5 * prune["macs_before"] and prune["params_after"] < prune["params_before"]
    assert distill["student_wrapped_in_contract"] and distill["student_macs"] < 0.5 * distill["teacher_macs"]
    for name in ("torch_channel_prune", "torch_distill"):
        assert v[name].runtime == "torchscript"
        traced = torch.jit.load(str(optimized["state_dict"]["work"] / "variants" / name / v[name].artifact))
        assert traced(torch.rand(2, 3, 66, 200)).shape == (2, 2)


def test_recurrent_dls_model_skips_channel_pruning_and_distillation(dls, tiny_data, tmp_path):
    from pilotopt.techniques import optimize

    vs = optimize(dls["root"] / "DLT_net_model_123.ckpt", "torch_channel_prune,torch_distill", [tiny_data], tmp_path,
                  arch="dls_deepest_lstm_tinypilotnet", contract="dls-torch", test_circuits=("simple",), threads=1)
    assert [v.status for v in vs] == ["skipped", "skipped"]
    assert "recurrent" in vs[0].reason and "100x50" in vs[1].reason


@pytest.mark.slow
def test_keras_model_is_redeclared_and_its_batchnorm_folded(optimized):
    v = optimized["keras_h5"]["variants"]
    assert v["tf_qat"].status == "ok"  # TF-MOT refuses BatchNormalization: folded into an exact Rescaling
    from ai_edge_litert.interpreter import Interpreter

    tflite = optimized["keras_h5"]["work"] / "variants" / "tflite_fp32" / v["tflite_fp32"].artifact
    assert tuple(Interpreter(model_path=str(tflite)).get_input_details()[0]["shape"][1:]) == (66, 200, 3)


@pytest.mark.slow
@pytest.mark.parametrize("case", ["state_dict", "keras_h5", "onnx"])
def test_evaluate_a_bare_model_file(case, dls, tiny_data, tmp_path):
    file, arch, preset, _ = CASES[case]
    args = ["evaluate", "--artifacts", str(dls["root"] / file), "--data", str(tiny_data), "--out", str(tmp_path / "e"),
            "--input", preset, "--test-circuits", "simple", "--threads", "1", "--min-calls", "5", "--min-seconds", "0.01",
            "--throughput-batch", "8"] + (["--arch", arch] if arch else [])
    r = _cli(*args)
    assert r.returncode == 0, r.stdout + r.stderr
    doc = json.loads((tmp_path / "e" / "results.json").read_text())
    (row,) = doc["variants"]
    assert row["status"] == "ok" and row["input_contract"].startswith(preset)


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_sim_drive_a_dls_model(case, dls, tmp_path):
    file, arch, preset, _ = CASES[case]
    r = _cli("sim", "drive", "--model", str(dls["root"] / file), "--input", preset, "--circuit", "simple",
             "--timeout", "3", "--json", str(tmp_path / "run.json"), *(["--arch", arch] if arch else []))
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stdout + r.stderr
    doc = json.loads((tmp_path / "run.json").read_text())
    assert doc["brain"]["input_contract"].startswith(preset) and doc["metrics"]["completed_distance"] >= 0


def test_wrong_preset_is_caught_or_visible(dls, tmp_path):
    from pilotopt.artifacts import load_artifact_predictor, open_artifact
    from pilotopt.contracts import out_of_range_share

    # an NCHW state dict fed NHWC by the pilotopt preset: an error before any work
    with pytest.raises(BadInputError, match="declares input .*pass --input"):
        open_artifact(dls["root"] / "pilot_net_model_123.ckpt", arch="dls_pilotnet", contract="pilotopt")
    # a trace fed the wrong layout: one line naming the fix, no traceback
    r = _cli("sim", "drive", "--model", str(dls["root"] / "baseline.pth"), "--circuit", "simple", "--timeout", "2")
    assert r.returncode == 2 and "Traceback" not in r.stderr and "--input" in r.stderr, r.stderr
    # a Keras model fed raw pixels instead of Normalize(): outputs leave [0, 1]
    art = open_artifact(dls["root"] / "20230101_pilotnet_model_no_crop.h5",
                        contract={"base": "dls-tf", "scaling": "raw"})
    images = np.random.default_rng(0).integers(0, 256, (16, 66, 200, 3)).astype(np.uint8)
    assert out_of_range_share(load_artifact_predictor(art).predict(images)) > 0.5
    right = open_artifact(dls["root"] / "20230101_pilotnet_model_no_crop.h5", contract="dls-tf")
    assert out_of_range_share(load_artifact_predictor(right).predict(images)) < 0.5
    shares = {}
    for name, preset in (("wrong", str(_yaml(tmp_path, "base: dls-tf\nscaling: raw\n"))), ("right", "dls-tf")):
        r = _cli("sim", "drive", "--model", str(dls["root"] / "20230101_pilotnet_model_no_crop.h5"), "--circuit",
                 "simple", "--timeout", "2", "--input", preset, "--json", str(tmp_path / f"{name}.json"))
        assert r.returncode == 0 and "input contract" in r.stderr, r.stderr
        shares[name] = json.loads((tmp_path / f"{name}.json").read_text())["brain"]["outputs_out_of_range_share"]
    assert shares["wrong"] > shares["right"]  # recorded with every drive


def test_out_of_range_warning(capsys):
    from pilotopt.cli.model_options import warn_out_of_range

    warn_out_of_range(0.9, "dls-tf")
    err = capsys.readouterr().err
    assert "warning: 90%" in err and "pass --input" in err
    warn_out_of_range(0.1, "dls-tf")
    assert capsys.readouterr().err == ""


def _yaml(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "contract.yaml"
    p.write_text(text)
    return p


def test_state_dict_needs_an_arch_and_the_right_one(dls):
    from pilotopt.runtimes import load_predictor

    with pytest.raises(BadInputError, match="--arch"):
        load_predictor(dls["root"] / "pilot_net_model_123.ckpt")
    with pytest.raises(BadInputError, match="do not fit architecture 'pilotnet'"):
        load_predictor(dls["root"] / "pilot_net_model_123.ckpt", arch="pilotnet")


def test_kinds_are_detected_by_content_not_name(dls, tmp_path):
    import shutil

    from pilotopt.artifacts import detect_kind

    root = dls["root"]
    expect = {"pilot_net_model_123.ckpt": "torch_state_dict", "baseline.pth": "torchscript",
              "pilotnet_nchw.onnx": "onnx", "20230101_pilotnet_model_no_crop.h5": "keras_h5",
              "pilotnet_savedmodel": "saved_model"}
    for name, kind in expect.items():
        assert detect_kind(root / name).name == kind
        renamed = tmp_path / f"renamed_{kind}"  # no telling suffix
        (shutil.copytree if (root / name).is_dir() else shutil.copy2)(root / name, renamed)
        assert detect_kind(renamed).name == kind, name


RUN = """\
profile: quick
threads: 1
data: {{path: [{data}], test_circuits: [simple]}}
techniques: [{techniques}]
offline: {{max_frames: 24, min_calls: 5, min_seconds: 0.05, throughput_batch: 8}}
closed_loop: {{timeout_s: 2.0, repeats: 1, conditions: []}}
"""
RUN_TECHNIQUES = {"state_dict": "torch, onnx_fp32", "torchscript": "torch", "onnx": "onnx_fp32", "lstm": "torch",
                  "keras_h5": "keras", "saved_model": "tflite_fp32"}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_run_from_a_given_model(case, dls, tiny_data, tmp_path):
    file, arch, preset, _ = CASES[case]
    cfg = tmp_path / "given.yaml"
    cfg.write_text(RUN.format(data=tiny_data, techniques=RUN_TECHNIQUES[case]))
    r = _cli("run", "--config", str(cfg), "--out", str(tmp_path / "run"), "--model", str(dls["root"] / file),
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
    # the recommended variant, deployable by the user's own tools, with its contract beside it
    deploy = tmp_path / "run" / "report" / "deploy"
    doc = json.loads((deploy / "input_contract.json").read_text())
    assert doc["input_contract"]["name"].startswith(preset)
    if case == "state_dict":  # load it the way DLS / Behavior Metrics do, and compare with the model
        x = torch.rand(2, 3, 66, 200)
        with torch.no_grad():
            expected = dls["net"](x).numpy()
        if doc["kind"] == "onnx":
            import onnxruntime as ort

            sess = ort.InferenceSession(str(deploy / doc["artifact"]))
            got = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
        else:
            from pilotopt.models.arch import resolve_arch

            net = resolve_arch("dls_pilotnet").build(0)
            net.load_state_dict(torch.load(deploy / (doc["state_dict"] or doc["artifact"]), weights_only=True))
            with torch.no_grad():
                got = net(x).numpy()
        np.testing.assert_allclose(got, expected, atol=1e-4)
