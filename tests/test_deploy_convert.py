"""The conversions behind `pilotopt deploy --target behavior-metrics`: a `.tflite` edited so that
Behavior Metrics' TF brains (albumentations Normalize() of the uint8 RGB crop, float32 NHWC) get the
model's outputs on the raw pixels, and a TorchScript for its torch brain (ToTensor: NCHW p / 255, no
.eval()) that runs in a plain-torch process, PT2E q/dq programs included. Tiny models built here;
the BM feeding is written from the facts in issue 29, not from BM's code."""

from __future__ import annotations

import numpy as np
import pytest

from pilotopt.contracts.contract import IMAGENET_MEAN, IMAGENET_STD, InputContract, OutputMap
from pilotopt.errors import BadInputError

H, W = 66, 200
MEAN = np.array(IMAGENET_MEAN, np.float32)
STD = np.array(IMAGENET_STD, np.float32)
# a contract that exercises every feeding step: BGR, imagenet scaling, outputs [w, v] with BM's
# legacy map (v = 6 p, w = 6 p - 3)
ODD = InputContract(name="odd", channels="bgr", pixel_scale=1 / 255, mean=IMAGENET_MEAN, std=IMAGENET_STD,
                    outputs=OutputMap(1, 0, 6.0, 0.0, 6.0, -3.0))
ODD_NCHW = InputContract(name="odd-nchw", channels="bgr", layout="nchw", pixel_scale=1 / 255, mean=IMAGENET_MEAN,
                         std=IMAGENET_STD, outputs=OutputMap(1, 0, 6.0, 0.0, 6.0, -3.0))


@pytest.fixture(scope="module")
def frames():
    return np.random.default_rng(7).integers(0, 256, (4, H, W, 3), dtype=np.uint8)


def bm_normalize(frame: np.ndarray) -> np.ndarray:
    """Behavior Metrics' ImageNormalized: albumentations Normalize() with its defaults, float32."""
    return ((frame.astype(np.float32) / np.float32(255.0) - MEAN) / STD).astype(np.float32)


# -- .tflite ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tflites():
    import tensorflow as tf
    import tf_keras as keras

    keras.utils.set_random_seed(0)
    small = keras.initializers.RandomNormal(stddev=0.002)  # raw 0..255 pixels in, outputs of order 1
    inp = keras.Input((H, W, 3))
    x = keras.layers.Conv2D(4, 5, strides=4, activation="relu", kernel_initializer=small)(inp)
    x = keras.layers.Flatten()(x)
    out = keras.layers.Dense(2, kernel_initializer=keras.initializers.RandomNormal(stddev=0.05))(x)
    model = keras.Model(inp, out)
    rng = np.random.default_rng(0)
    calib = [rng.integers(0, 256, (1, H, W, 3)).astype(np.float32) for _ in range(8)]  # integer-valued pixels

    def convert(mode: str, m=model) -> bytes:
        c = tf.lite.TFLiteConverter.from_keras_model(m)
        if mode != "fp32":
            c.optimizations = [tf.lite.Optimize.DEFAULT]
        if mode == "fp16":
            c.target_spec.supported_types = [tf.float16]
        if mode.startswith("int8"):
            c.representative_dataset = lambda: ([x] for x in calib)
            c.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if mode == "int8-io":
            c.inference_input_type = c.inference_output_type = tf.int8
        return c.convert()

    out = {mode: convert(mode) for mode in ("fp32", "fp16", "dr", "int8", "int8-io")}
    a, b = keras.Input((4,)), keras.Input((4,))
    out["two-inputs"] = convert("fp32", keras.Model([a, b], keras.layers.Dense(2)(keras.layers.Concatenate()([a, b]))))
    return out


def _interpreters():
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    return {"tf.lite": tf.lite.Interpreter, "ai_edge_litert": Interpreter}


def _run(interpreter_cls, model: bytes, batch: np.ndarray) -> tuple[np.ndarray, dict, dict]:
    """Frame by frame, batch 1, as BM's brains call it: set_tensor / invoke / get_tensor."""
    it = interpreter_cls(model_content=model)
    it.allocate_tensors()
    (i,), (o,) = it.get_input_details(), it.get_output_details()
    ys = []
    for x in batch:
        it.set_tensor(i["index"], x[None].astype(np.float32))
        it.invoke()
        ys.append(it.get_tensor(o["index"])[0].copy())
    return np.stack(ys), i, o


@pytest.mark.parametrize("mode", ["fp32", "fp16", "dr", "int8"])
def test_tflite_takes_normalized_frames(tflites, frames, mode):
    """Normalize()d frames into the edited model give the original model's outputs on the raw
    integer pixels (int8: exactly, the ROUND recovers the very integers its QUANTIZE sees), in both
    interpreters; an output affine is applied per column; the I/O keeps its dtype, name and shape."""
    from pilotopt.deploy.tflite_edit import add_affine, undo_normalize

    original = tflites[mode]
    scale, offset = undo_normalize()
    edited = add_affine(original, scale, offset, round_input=True)
    with_out = add_affine(original, scale, offset, round_input=True, out_scale=[2.0, 0.5], out_offset=[0.25, -1.0])
    normalized = np.stack([bm_normalize(f) for f in frames])
    for name, cls in _interpreters().items():
        ref, ref_in, ref_out = _run(cls, original, frames.astype(np.float32))
        got, got_in, got_out = _run(cls, edited, normalized)
        for key in ("name", "shape", "shape_signature", "dtype"):
            assert np.array_equal(got_in[key], ref_in[key]), (name, key)
            assert np.array_equal(got_out[key], ref_out[key]), (name, key)
        assert got_in["dtype"] == np.float32 and list(got_in["shape"]) == [1, H, W, 3]
        if mode == "int8":
            assert np.array_equal(got, ref), name
        else:
            assert np.abs(got - ref).max() <= 1e-5, (name, np.abs(got - ref).max())
        assert np.abs(ref).max() > 1e-2  # the outputs carry signal
        affine, _, _ = _run(cls, with_out, normalized)
        expected = ref * np.float32([2.0, 0.5]) + np.float32([0.25, -1.0])
        assert np.abs(affine - expected).max() <= (1e-6 if mode == "int8" else 1e-5), name
    sig = _interpreters()["tf.lite"](model_content=edited).get_signature_runner()
    (y,) = sig(**{sig.get_input_details().popitem()[0]: normalized[:1]}).values()
    assert np.abs(y - _run(_interpreters()["tf.lite"], edited, normalized[:1])[0]).max() == 0


@pytest.mark.parametrize("mode", ["fp32", "int8"])
def test_tflite_for_behavior_metrics_applies_the_contract(tflites, frames, mode):
    """for_behavior_metrics folds a contract's channels, scaling and output map in: Normalize()d
    RGB frames -> pilotopt-normalized (v, w) equal to contract.decode(model(contract.encode(p))),
    so BM's v = 17.5 q + 6.5, w = 14.2 q - 7.1 gives the contract's physical commands."""
    from pilotopt.deploy.tflite_edit import add_affine, for_behavior_metrics, undo_normalize

    original = tflites[mode]
    normalized = np.stack([bm_normalize(f) for f in frames])
    cls = _interpreters()["ai_edge_litert"]
    for contract in (InputContract(), ODD):
        got, _, _ = _run(cls, for_behavior_metrics(original, contract), normalized)
        raw, _, _ = _run(cls, original, contract.encode(frames))
        want = contract.decode(raw)
        assert np.abs(got - want).max() <= 1e-5, (contract.name, np.abs(got - want).max())
        v, w = contract.commands(raw)
        assert np.abs(17.5 * got[:, 0] + 6.5 - v).max() <= 1e-4 and np.abs(14.2 * got[:, 1] - 7.1 - w).max() <= 1e-4
    default = for_behavior_metrics(original, InputContract())
    assert default == add_affine(original, *undo_normalize(), round_input=True)  # nothing else for pilotopt's own
    with pytest.raises(BadInputError, match="NHWC"):
        for_behavior_metrics(original, ODD_NCHW)


def test_tflite_full_integer_io_takes_float(tflites, frames):
    """A full-integer model (int8 in and out) gets a QUANTIZE after the float steps and a DEQUANTIZE
    before the output: fed Normalize()d frames it returns, in float32, what pilotopt's LiteRT runtime
    computes on the raw pixels (quantize in, dequantize out with the tensors' own parameters)."""
    from pilotopt.deploy.tflite_edit import add_affine, undo_normalize
    from pilotopt.runtimes.litert import dequantize, quantize

    original = tflites["int8-io"]
    edited = add_affine(original, *undo_normalize(), round_input=True, out_scale=[2.0, 1.0], out_offset=[0.5, 0.0])
    normalized = np.stack([bm_normalize(f) for f in frames])
    for name, cls in _interpreters().items():
        it = cls(model_content=original)
        it.allocate_tensors()
        (i,), (o,) = it.get_input_details(), it.get_output_details()
        ref = []
        for f in frames:
            it.set_tensor(i["index"], quantize(f[None].astype(np.float32), i))
            it.invoke()
            ref.append(dequantize(it.get_tensor(o["index"]), o)[0])
        ref = np.stack(ref)
        got, got_in, got_out = _run(cls, edited, normalized)
        assert got_in["dtype"] == np.float32 and got_out["dtype"] == np.float32
        assert np.abs(got - (ref * np.float32([2.0, 1.0]) + np.float32([0.5, 0.0]))).max() <= 1e-6, name
        assert np.abs(ref).max() > 1e-2


def test_tflite_refusals(tflites):
    from pilotopt.deploy.tflite_edit import add_affine, undo_normalize

    scale, offset = undo_normalize()
    cases = {"two-inputs": "2 inputs and 1 outputs"}
    for name, reason in cases.items():
        with pytest.raises(BadInputError) as err:
            add_affine(tflites[name], scale, offset, round_input=True)
        assert reason in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(BadInputError, match="has 2 values but the tensor's last axis has 3"):
        add_affine(tflites["fp32"], [1.0, 2.0], 0.0, round_input=False)
    with pytest.raises(BadInputError, match="not a readable .tflite"):
        add_affine(b"not a model", scale, offset, round_input=True)


def test_bm_normalize_is_albumentations(frames):
    """The test's Normalize() is albumentations' (where installed): what BM's brain computes."""
    A = pytest.importorskip("albumentations")
    got = A.Normalize()(image=frames[0])["image"]
    assert got.dtype == np.float32 and np.abs(got - bm_normalize(frames[0])).max() <= 1e-5


# -- TorchScript --------------------------------------------------------------------------------
def _tiny_net(layout: str = "nhwc"):
    import torch

    class Net(torch.nn.Module):
        """Raw 0..255 pixels in the contract's layout; BatchNorm and Dropout that a train-mode call
        would change."""

        def __init__(self):
            super().__init__()
            self.nhwc = layout == "nhwc"
            self.conv = torch.nn.Conv2d(3, 4, 5, stride=4)
            self.bn = torch.nn.BatchNorm2d(4)
            self.drop = torch.nn.Dropout(0.5)
            self.fc = torch.nn.Linear(4 * 16 * 49, 2)

        def forward(self, x):
            if self.nhwc:
                x = x.permute(0, 3, 1, 2) / 255.0
            x = torch.relu(self.bn(self.conv(x)))
            return self.fc(self.drop(x.flatten(1)))

    torch.manual_seed(0)
    net = Net()
    with torch.no_grad():
        net.bn.running_mean.uniform_(-0.2, 0.2)
        net.bn.running_var.uniform_(0.5, 2.0)
    return net.eval()


@pytest.fixture(scope="module")
def quantized(frames):
    """PT2E int8 copies of the tiny net as pilotopt makes them (techniques/_pt2e.py): the x86 and
    XNNPACK quantizers, static; and XNNPACK dynamic (choose_qparams on activations)."""
    import torch
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    from pilotopt.techniques import _pt2e

    net, x = _tiny_net(), torch.from_numpy(frames).float()
    quantizers = {"pt2": lambda: _pt2e._quantizer(False, "pt2")}
    if _has("executorch"):
        from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (XNNPACKQuantizer,
                                                                              get_symmetric_quantization_config)

        quantizers["executorch"] = lambda: _pt2e._quantizer(False, "executorch")
        quantizers["executorch-dynamic"] = lambda: XNNPACKQuantizer().set_global(
            get_symmetric_quantization_config(is_per_channel=True, is_dynamic=True))
    out = {}
    for name, make in quantizers.items():
        graph = torch.export.export(net, (x[:2],), dynamic_shapes=({0: _pt2e.batch_dim()},)).module()
        prepared = prepare_pt2e(graph, make())
        prepared(x)
        out[name] = convert_pt2e(prepared)
    return net, out


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _qdq_ops(gm) -> set[str]:
    return {str(n.target) for n in gm.graph.nodes if n.op == "call_function"
            and str(n.target).split(".")[0] in ("quantized_decomposed", "torchao")}


def test_to_core_ops_is_bit_identical(quantized, frames):
    """Every q/dq op becomes core aten (or a folded constant) and the outputs are the torchao
    program's bit for bit, folded or not; the input program is left as it was."""
    import torch

    from pilotopt.deploy.torchscript_export import to_core_ops

    _, programs = quantized
    x = torch.from_numpy(frames).float()
    for name, gm in programs.items():
        before = _qdq_ops(gm)
        assert before, name
        with torch.no_grad():
            ref = gm(x)
            for fold in (True, False):
                core = to_core_ops(gm, fold_constants=fold)
                assert not _qdq_ops(core), (name, fold)
                assert torch.equal(core(x), ref), (name, fold)
                assert torch.equal(core(x[:1]), gm(x[:1])), (name, fold)
        assert _qdq_ops(gm) == before
        if name == "executorch-dynamic":
            assert "quantized_decomposed.choose_qparams.tensor" in before
    with pytest.raises(BadInputError, match="GraphModule"):
        to_core_ops(_tiny_net())


def _bm_brain(module, frames, train: bool = True):
    """BM's torch brain: ToTensor of each crop (NCHW p / 255), batch 1, the module never put in
    eval mode (`train`: what a fresh nn.Module is in); returns the raw outputs q."""
    import torch

    from pilotopt.deploy.torchscript_export import bm_input

    module.train(train)
    with torch.no_grad():
        return np.concatenate([module(bm_input(f[None])).numpy() for f in frames])


def test_bm_torchscript_float_and_contracts(frames):
    """Float models (an nn.Module, a scripted one as a torchscript variant loads), pilotopt's own
    contract and one with BGR / imagenet / NCHW / [w, v]: the TorchScript fed as BM feeds gives
    contract.decode(model(contract.encode(p))) within 1e-5, the same in train mode as in eval mode
    (the model's BatchNorm and Dropout would change it)."""
    import torch

    from pilotopt.deploy.torchscript_export import bm_input, bm_torchscript

    cases = ((InputContract(), _tiny_net()), (InputContract(), torch.jit.script(_tiny_net())),
             (ODD_NCHW, _tiny_net("nchw")))
    for contract, net in cases:
        sm = bm_torchscript(net, contract, frames[:2])
        with torch.no_grad():
            want = contract.decode(net(torch.from_numpy(contract.encode(frames))).numpy())
            whole = sm(bm_input(frames)).numpy()  # a batch of 4 as well
        eval_out = _bm_brain(sm, frames, train=False)
        got = _bm_brain(sm, frames)
        assert np.abs(got - want).max() <= 1e-5, (contract.name, np.abs(got - want).max())
        assert np.array_equal(got, eval_out)
        assert np.abs(whole - want).max() <= 1e-5
        assert np.abs(want).max() > 1e-2


def test_bm_torchscript_quantized_runs_in_plain_torch(quantized, frames, tmp_path):
    """The PT2E programs as TorchScript: BM's feeding gives the torchao program's outputs on the raw
    pixels (within 1e-6, in practice bit for bit); the saved file loads and runs in a fresh process
    that imports only torch (torchao never imported there), train and eval mode alike."""
    import torch

    from pilotopt.deploy.torchscript_export import bm_input, bm_torchscript, check_loads_plain

    _, programs = quantized
    x = torch.from_numpy(frames).float()
    for name, gm in programs.items():
        sm = bm_torchscript(gm, InputContract(), frames[:2])
        kinds = {n.kind() for n in sm.inlined_graph.nodes()}
        assert not {k for k in kinds if k.startswith(("quantized_decomposed::", "torchao::"))}, name
        with torch.no_grad():  # frame by frame: dynamic quantization's qparams depend on the batch
            ref = np.concatenate([gm(x[i:i + 1]).numpy() for i in range(len(x))])
        got = _bm_brain(sm, frames)
        assert np.abs(got - ref).max() <= 1e-6, (name, np.abs(got - ref).max())
        if name != "pt2":
            continue
        path = tmp_path / f"pilotopt_{name}.pt"
        sm.save(str(path))
        info = check_loads_plain(path, bm_input(frames))
        assert info["loaded"] == [] and info["spread"] == 0.0 and info["shape"] == [len(frames), 2], info
        assert np.abs(info["output"].numpy() - ref).max() <= 1e-6
    with pytest.raises(BadInputError, match="could not load and run"):
        (tmp_path / "broken.pt").write_bytes(b"not torchscript")
        check_loads_plain(tmp_path / "broken.pt", bm_input(frames[:1]))
