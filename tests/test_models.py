"""The model registry: every architecture builds in PyTorch and in Keras with the same layers,
parameter counts and (after keras_to_torch) the same function."""

from __future__ import annotations

import functools
import math
import os
import subprocess
import sys

import numpy as np
import pytest

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

torch = pytest.importorskip("torch")
tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("tf_keras")

from pilotopt.errors import BadInputError  # noqa: E402
from pilotopt.models import (  # noqa: E402
    ModelSpec,
    build_keras,
    build_torch,
    count_params,
    get_model_spec,
    keras_to_torch,
    layer_table,
    macs,
    model_names,
    register_model,
    torch_to_keras,
)
from pilotopt.models import _registry  # noqa: E402

ALL = ["deepest_lstm_tinypilotnet", "pilotnet", "pilotnet_same", "pilotnet_student", "pilotnet_nano"]
FRAME = ["pilotnet", "pilotnet_same", "pilotnet_student", "pilotnet_nano"]
EXPECTED_PARAMS = {
    "pilotnet": 1_595_522,
    "pilotnet_same": 17_016_194,
    "pilotnet_student": 91_306,
    "pilotnet_nano": 47_262,
    "deepest_lstm_tinypilotnet": 107_670,
}
EXPECTED_MACS = {
    "pilotnet": 28_218_480,
    "pilotnet_same": 65_418_720,
    "pilotnet_student": 7_588_848,
    "pilotnet_nano": 1_569_640,
    "deepest_lstm_tinypilotnet": 23_034_568,
}


@functools.cache
def models(name: str):
    """(torch model, keras model) built with seed 0, shared by the tests (read-only)."""
    return build_torch(name, seed=0), build_keras(name, seed=0)


def pixels(name: str, n: int, seed: int = 0) -> np.ndarray:
    """Random uint8-valued float32 input of the right shape."""
    shape = get_model_spec(name).batch_shape(n)
    return np.random.default_rng(seed).integers(0, 256, shape).astype(np.float32)


def run_torch(model, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy()


def run_keras(model, x: np.ndarray) -> np.ndarray:
    return model(x, training=False).numpy()


def randomized_keras(name: str, seed: int = 7):
    """A Keras model with He-scaled random kernels and non-zero biases, so outputs are O(1) and a
    wrong transfer (flatten order, gate order, a missing bias) cannot hide under the 1e-4."""
    model = build_keras(name, seed=0)
    rng = np.random.default_rng(seed)
    for w in model.weights:
        shape = tuple(w.shape)
        std = math.sqrt(2.0 / math.prod(shape[:-1])) if len(shape) >= 2 else 0.1
        w.assign(rng.normal(0.0, std, shape).astype(np.float32))
    return model


def nhwc_tail(shape) -> tuple[int, ...]:
    """Per-sample, per-frame shape of a layer output: last 3 dims of an image tensor, else last."""
    shape = tuple(shape)
    return shape[-3:] if len(shape) >= 4 else shape[-1:]


def torch_module(model, name: str):
    found = [m for full, m in model.named_modules() if full.rsplit(".", 1)[-1] == name]
    assert len(found) == 1, f"{name}: {len(found)} torch modules"
    return found[0]


# -- the registry ---------------------------------------------------------------------------------


def test_registry_lists_every_model_with_its_spec():
    assert model_names() == sorted(ALL)
    for name in ALL:
        spec = get_model_spec(name)
        assert spec.name == name and spec.description
        assert spec.input_shape == (66, 200, 3)
        expected_t = 3 if name == "deepest_lstm_tinypilotnet" else 1
        assert spec.sequence_length == expected_t
        assert spec.batch_shape(4) == ((4, 3, 66, 200, 3) if expected_t > 1 else (4, 66, 200, 3))


def test_unknown_model_is_a_bad_input_error_naming_the_choices():
    with pytest.raises(BadInputError, match=r"unknown model 'x'; choose one of deepest_lstm_tinypilotnet, pilotnet,"):
        get_model_spec("x")
    with pytest.raises(BadInputError, match="unknown model"):
        build_torch("nope")
    with pytest.raises(BadInputError, match="unknown model"):
        build_keras("nope")


def test_register_model_accepts_a_spec_class_and_a_factory():
    class Tiny(ModelSpec):
        description = "test"

        def layer_table(self):
            return [_registry.LayerInfo("output", "dense", (2,), 6, 4)]

    def factory():
        return Tiny()

    try:
        assert register_model("tmp_tiny")(Tiny) is Tiny
        register_model("tmp_tiny_factory")(factory)
        assert get_model_spec("tmp_tiny").name == "tmp_tiny"
        assert get_model_spec("tmp_tiny_factory").num_params == 6
        assert macs("tmp_tiny") == 4
        with pytest.raises(ValueError, match="already registered"):
            register_model("pilotnet")(Tiny)
    finally:
        _registry._REGISTRY.pop("tmp_tiny", None)
        _registry._REGISTRY.pop("tmp_tiny_factory", None)
    assert model_names() == sorted(ALL)


def test_importing_the_registry_imports_neither_framework():
    code = (
        "import sys, pilotopt.models as m; m.macs('pilotnet'); "
        "print('torch' in sys.modules, 'tensorflow' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


# -- same architecture in both frameworks ---------------------------------------------------------


@pytest.mark.parametrize("name", ALL)
def test_parameter_counts_are_identical_and_as_stated(name):
    tm, km = models(name)
    assert count_params(tm) == count_params(km) == get_model_spec(name).num_params == EXPECTED_PARAMS[name]
    assert count_params(name) == EXPECTED_PARAMS[name]


def test_stated_sizes():
    assert 1.55e6 < EXPECTED_PARAMS["pilotnet"] < 1.65e6  # "about 1.6 M"
    assert 16.5e6 < EXPECTED_PARAMS["pilotnet_same"] < 17.5e6  # "about 17 M"
    dense1 = next(layer for layer in layer_table("pilotnet_same") if layer.name == "dense1")
    assert dense1.params > 0.98 * EXPECTED_PARAMS["pilotnet_same"]  # almost all in the first dense


@pytest.mark.parametrize("name", ALL)
def test_layer_by_layer_shapes_and_parameter_counts_match(name):
    tm, km = models(name)
    seen: dict[str, tuple] = {}
    hooks = [
        torch_module(tm, layer.name).register_forward_hook(
            lambda mod, inp, out, key=layer.name: seen.__setitem__(key, tuple(out.shape))
        )
        for layer in layer_table(name)
    ]
    try:
        run_torch(tm, pixels(name, 1))
    finally:
        for h in hooks:
            h.remove()
    for layer in layer_table(name):
        klayer = km.get_layer(layer.name)
        assert nhwc_tail(klayer.output_shape) == layer.output_shape, layer.name
        assert klayer.count_params() == layer.params, layer.name
        tshape = seen[layer.name]
        tshape = (*tshape[-2:], tshape[-3]) if len(tshape) >= 4 else tshape[-1:]  # NCHW -> HWC
        assert tshape == layer.output_shape, layer.name
        assert count_params(torch_module(tm, layer.name)) == layer.params, layer.name


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("n", [1, 4])
def test_output_shape(name, n):
    tm, km = models(name)
    x = pixels(name, n)
    for y in (run_torch(tm, x), run_keras(km, x)):
        assert y.shape == (n, 2) and y.dtype == np.float32 and np.isfinite(y).all()


@pytest.mark.parametrize("name", ALL)
def test_keras_to_torch_gives_the_same_function(name):
    km = randomized_keras(name)
    tm = keras_to_torch(km, build_torch(name, seed=123))
    x = pixels(name, 3, seed=1)
    yk, yt = run_keras(km, x), run_torch(tm, x)
    assert np.abs(yk).max() > 0.1  # a meaningful comparison, not two near-zero outputs
    np.testing.assert_allclose(yt, yk, atol=1e-4, rtol=0)


@pytest.mark.parametrize("name", ALL)
def test_torch_to_keras_is_the_exact_inverse(name):
    km0 = randomized_keras(name)
    tm = keras_to_torch(km0, build_torch(name, seed=123))
    km = torch_to_keras(tm, build_keras(name, seed=11))
    for a, b in zip(km0.get_weights(), km.get_weights()):
        np.testing.assert_array_equal(a, b)  # transposes and reorders only: bit for bit
    x = pixels(name, 3, seed=2)
    yt, yk = run_torch(tm, x), run_keras(km, x)
    assert np.abs(yt).max() > 0.1
    np.testing.assert_allclose(yk, yt, atol=1e-4, rtol=0)


def test_torch_to_keras_refuses_another_architecture():
    with pytest.raises(BadInputError, match="torch_to_keras"):
        torch_to_keras(build_torch("pilotnet_student"), build_keras("pilotnet_nano"))


def test_keras_to_torch_refuses_another_architecture():
    with pytest.raises(BadInputError, match="keras_to_torch"):
        keras_to_torch(models("pilotnet")[1], build_torch("pilotnet_student"))


@pytest.mark.parametrize("name", ALL)
def test_no_batchnorm_and_the_normalization_is_the_fixed_rescale(name):
    tm, km = models(name)
    klayers = [getattr(layer, "layer", layer) for layer in km.layers]  # unwrap TimeDistributed
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in klayers)
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in tm.modules())

    norm = km.get_layer("normalize")
    assert isinstance(norm, keras.layers.Rescaling) and not norm.weights
    assert km.layers[1] is norm  # right after the input
    probe_k = keras.Model(km.input, norm.output)
    shape = get_model_spec(name).batch_shape(3)
    x = np.stack([np.full(shape[1:], v, np.float32) for v in (0.0, 127.5, 255.0)])
    yk = probe_k(x).numpy()

    assert list(tm.normalize.parameters()) == [] and list(tm.normalize.buffers()) == []
    captured = {}
    hook = tm.normalize.register_forward_hook(lambda mod, inp, out: captured.update(inp=inp[0], out=out))
    try:
        run_torch(tm, x)
    finally:
        hook.remove()
    assert captured["inp"].shape[-3:] == (3, 66, 200)  # NHWC -> NCHW happened first
    yt = captured["out"].numpy()
    for y in (yk, yt):
        y = y.reshape(3, -1)
        np.testing.assert_allclose(y[0], -1.0, atol=1e-6)
        np.testing.assert_allclose(y[1], 0.0, atol=1e-6)
        np.testing.assert_allclose(y[2], 1.0, atol=1e-6)


@pytest.mark.parametrize("name", ALL)
def test_deterministic_init(name):
    rng_before = torch.random.get_rng_state()
    t0, k0 = models(name)
    t0b, t1 = build_torch(name, seed=0), build_torch(name, seed=1)
    assert torch.equal(torch.random.get_rng_state(), rng_before)  # the global RNG is untouched
    for key, value in t0.state_dict().items():
        assert torch.equal(value, t0b.state_dict()[key]), key
    assert not torch.equal(t0.state_dict()["head.dense1.weight"], t1.state_dict()["head.dense1.weight"])

    k0b, k1 = build_keras(name, seed=0), build_keras(name, seed=1)
    for a, b, c in zip(k0.weights, k0b.weights, k1.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
        if "kernel" in a.name:  # kernels are random; biases are zeros (forget gate: ones)
            assert not np.array_equal(a.numpy(), c.numpy()), a.name
    # Keras-like init in torch: zero biases (forget-gate bias 1 in the ConvLSTM cells).
    assert torch.count_nonzero(t0.head.output.bias) == 0


def test_convlstm_keras_semantics():
    km = models("deepest_lstm_tinypilotnet")[1]
    for i, return_sequences in ((1, True), (2, True), (3, False)):
        layer = km.get_layer(f"convlstm{i}")
        assert layer.return_sequences is return_sequences and layer.padding == "same"
        assert layer.cell.activation.__name__ == "tanh" and layer.cell.recurrent_activation.__name__ == "sigmoid"
        bias = layer.cell.bias.numpy().reshape(4, -1)  # gates (i, f, c, o); unit_forget_bias
        np.testing.assert_array_equal(bias, np.repeat([[0.0], [1.0], [0.0], [0.0]], bias.shape[1], axis=1))
    tm = models("deepest_lstm_tinypilotnet")[0]
    tbias = tm.lstm.convlstm1.cell.conv.bias.detach().numpy().reshape(4, -1)
    np.testing.assert_array_equal(tbias, bias)


# -- cost -----------------------------------------------------------------------------------------


def count_macs_by_hooks(model, x: np.ndarray) -> int:
    """MACs of one forward pass measured on the torch modules (batch of one)."""
    total = 0

    def hook(mod, inp, out):
        nonlocal total
        if isinstance(mod, torch.nn.Conv2d):
            total += out.numel() * (mod.in_channels // mod.groups) * mod.kernel_size[0] * mod.kernel_size[1]
        else:
            total += out.numel() * mod.in_features

    layers = [m for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    hooks = [m.register_forward_hook(hook) for m in layers]
    try:
        run_torch(model, x)
    finally:
        for h in hooks:
            h.remove()
    return total


@pytest.mark.parametrize("name", ALL)
def test_macs_are_analytic_and_match_the_built_model(name):
    assert macs(name) == EXPECTED_MACS[name]
    assert count_macs_by_hooks(models(name)[0], pixels(name, 1)) == macs(name)


@pytest.mark.parametrize("name", ALL)
def test_macs_counted_from_a_built_keras_model_match_the_registry(name):
    """What the `keras` technique records for a user's .h5, whose architecture no registry names;
    a recurrent layer is not counted (None), never guessed."""
    from pilotopt.models import build_keras, get_model_spec, keras_macs

    got = keras_macs(build_keras(name))
    if get_model_spec(name).sequence_length > 1:
        assert got is None
    else:
        assert got == macs(name)


def test_student_is_much_cheaper_than_pilotnet():
    assert count_params("pilotnet") >= 5 * count_params("pilotnet_student")
    assert macs("pilotnet") >= 3 * macs("pilotnet_student")


# -- what the rest of the pipeline needs ----------------------------------------------------------


def test_tfmot_quantize_and_prune_accept_pilotnet():
    tfmot = pytest.importorskip("tensorflow_model_optimization")
    qmodel = tfmot.quantization.keras.quantize_model(build_keras("pilotnet"))
    assert qmodel(pixels("pilotnet", 2)).shape == (2, 2)
    pmodel = tfmot.sparsity.keras.prune_low_magnitude(build_keras("pilotnet"))
    assert pmodel.output_shape == (None, 2)


def test_pilotnet_exports_to_onnx_and_onnxruntime_agrees(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    tm = keras_to_torch(randomized_keras("pilotnet"), build_torch("pilotnet"))
    x = pixels("pilotnet", 4, seed=3)
    path = tmp_path / "pilotnet.onnx"
    batch = torch.export.Dim("batch")
    torch.onnx.export(
        tm, (torch.from_numpy(x),), str(path), dynamo=True, external_data=False, verbose=False,
        input_names=["image"], output_names=["vw"], dynamic_shapes=({0: batch},),
    )
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for n in (1, 4):
        (y,) = session.run(None, {"image": x[:n]})
        np.testing.assert_allclose(y, run_torch(tm, x[:n]), atol=1e-4, rtol=0)
