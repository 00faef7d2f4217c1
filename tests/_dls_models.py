"""Models trained elsewhere, built here exactly as DeepLearningStudio (DLS) and Behavior Metrics lay
them out and save them (helpers shared by the test_own_models* files, split so the two test workers
share the work): a PyTorch PilotNet state dict (.ckpt), its TorchScript trace (.pth, traced on DLS's
transposed dummy input), an NCHW ONNX export, DLS's single-frame DeepestLSTMTinyPilotNet state dict,
and a Keras PilotNet with an input BatchNorm, 'same' padding and a (200, 66, 3) declaration (.h5 and
SavedModel)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)
EVAL = dict(threads=1, test_circuits="simple", min_calls=5, min_seconds=0.01, warmup_calls=1, warmup_seconds=0.0,
            throughput_batch=8, max_frames=None)
TORCH_CASES = ("state_dict", "torchscript", "onnx", "lstm")
TF_CASES = ("keras_h5", "saved_model")


def cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pilotopt", *args], capture_output=True, text=True, timeout=timeout)


def build_dls_models(root: Path) -> dict:
    """Every artifact a DLS / BM user has, with the preset and architecture it needs."""
    from pilotopt.models.arch import resolve_arch

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


# name -> (file, arch, preset, techniques): three or more per preset, each kind of step once. The
# SavedModel takes the preset's Keras load and one LiteRT conversion (tflite_fp32, the conversion
# path every LiteRT technique shares, _tflite.convert); float16 weights are tested on their own in
# tests/test_techniques.py (test_all_ok_and_input_model_unchanged, test_float16_weights).
CASES = {
    "state_dict": ("pilot_net_model_123.ckpt", "dls_pilotnet", "dls-torch",
                   "torch,torch_channel_prune,torch_distill,torch_static"),
    "torchscript": ("baseline.pth", None, "dls-torch", "torch,onnx_fp32,openvino_fp32"),
    "onnx": ("pilotnet_nchw.onnx", None, "dls-torch", "onnx_fp32,onnx_fp16,openvino_fp32"),
    "lstm": ("DLT_net_model_123.ckpt", "dls_deepest_lstm_tinypilotnet", "dls-torch", "torch,torchscript,torch_prune_local"),
    "keras_h5": ("20230101_pilotnet_model_no_crop.h5", None, "dls-tf", "keras,tflite_fp32,tf_qat"),
    "saved_model": ("pilotnet_savedmodel", None, "dls-tf", "keras,tflite_fp32"),
}


FINE_TUNED = ("torch_prune_local", "tf_qat", "torch_channel_prune", "torch_distill")


def expected_outputs(case: str, dls: dict, tiny_data: Path, geometry) -> np.ndarray:
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


def optimize_and_evaluate(cases, dls: dict, tiny_data: Path, tmp_path_factory) -> dict:
    """Each DLS artifact of `cases` optimized with its preset (at least three techniques) and evaluated."""
    from pilotopt.evaluate.harness import evaluate_artifacts
    from pilotopt.techniques import optimize

    out = {}
    for case in cases:
        file, arch, preset, names = CASES[case]
        work = tmp_path_factory.mktemp(f"own_{case}")
        variants = optimize(dls["root"] / file, names, [tiny_data], work / "variants", arch=arch, contract=preset,
                            test_circuits=("simple",), threads=1, cache_dir=work / "cache",
                            # torch_static's pt2 backend: the same PT2E program without the XNNPACK lowering,
                            # which tests/test_executorch.py and test_deploy.py cover
                            settings={**{n: {"epochs": 1, "max_train_frames": 16} for n in FINE_TUNED if n in names},
                                      "torch_static": {"backend": "pt2"}},
                            max_mse_ratio=1e3)  # 16-frame fine-tunes of random models test contracts, not quality
        doc = evaluate_artifacts(work / "variants", [tiny_data], work / "eval", cache_dir=work / "cache", **EVAL)
        out[case] = {"variants": {v.name: v for v in variants}, "doc": doc, "work": work}
    return out


def check_optimized_case(case: str, optimized: dict, dls: dict, tiny_data: Path) -> None:
    """Every technique ran; the fp32 variant equals the model computed by hand; each variant keeps the contract."""
    from pilotopt.contracts import get_contract

    got = optimized[case]
    names = CASES[case][3].split(",")
    assert [got["variants"][n].status for n in names] == ["ok"] * len(names), \
        {n: got["variants"][n].reason for n in names}
    rows = {r["name"]: r for r in got["doc"]["variants"]}
    assert all(rows[n]["status"] == "ok" for n in names), {n: rows[n].get("reason") for n in names}
    preset = get_contract(CASES[case][2])
    geometry = preset.sized_to((3, 100, 50)).geometry if case == "lstm" else preset.geometry
    expected = expected_outputs(case, dls, tiny_data, geometry)
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
