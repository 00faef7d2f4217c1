"""The model registry: one spec per architecture, each able to build itself in PyTorch and Keras.

A spec is registered by name with `@register_model("name")` on a `ModelSpec` subclass (or on a
zero-argument function returning a spec). The spec knows its layer plan analytically
(`layer_table()`: output shape, parameters and multiply-accumulates of every layer), so parameter
counts and MACs are available without building a model, and tests can check that both frameworks
build exactly that plan.

Importing this module imports neither torch nor TensorFlow; the builders import them lazily.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pilotopt.errors import BadInputError
from pilotopt.models._tfmot import register_tfmot_layers
from pilotopt.preprocess import Geometry

INPUT_SHAPE = (66, 200, 3)  # one frame, HWC; the same as pilotopt.preprocess (INPUT_H, INPUT_W)
OUTPUTS = 2  # normalized (v, w)

# The fixed input normalization, identical in both frameworks: y = x * NORM_SCALE + NORM_OFFSET maps
# raw pixels [0, 255] to [-1, 1].
NORM_SCALE = 1.0 / 127.5
NORM_OFFSET = -1.0


@dataclass(frozen=True)
class LayerInfo:
    """One layer of a model's plan, per sample (frame models) or per sequence (recurrent).

    `name` is the layer's name in BOTH frameworks (Keras layer name, torch submodule name).
    `output_shape` excludes the batch dimension; it is NHWC for image tensors and, for layers
    applied per frame (TimeDistributed), the per-frame shape.
    """

    name: str
    kind: str  # "rescale", "conv", "convlstm", "flatten", "dense"
    output_shape: tuple[int, ...]
    params: int
    macs: int


class ModelSpec:
    """Base class of a registered architecture. Subclasses set the class attributes and implement
    `layer_table`, `_build_torch` and `_build_keras`."""

    name: str = ""  # set by register_model
    description: str = ""
    sequence_length: int = 1  # frames per sample; > 1 only for recurrent models
    input_shape: tuple[int, int, int] = INPUT_SHAPE  # one frame (H, W, C)
    outputs: int = OUTPUTS

    # -- shapes ------------------------------------------------------------------------------
    @property
    def sample_shape(self) -> tuple[int, ...]:
        """Shape of one sample without the batch axis: (H, W, C), or (T, H, W, C) if recurrent."""
        if self.sequence_length > 1:
            return (self.sequence_length, *self.input_shape)
        return tuple(self.input_shape)

    @property
    def input_geometry(self):
        """The crop and size of pilotopt's input contract at this model's input size."""
        return Geometry(height=self.input_shape[0], width=self.input_shape[1])

    def batch_shape(self, n: int) -> tuple[int, ...]:
        """Shape of an input batch of `n` samples (float32 NHWC raw pixels in [0, 255])."""
        return (n, *self.sample_shape)

    # -- analytic plan -----------------------------------------------------------------------
    def layer_table(self) -> list[LayerInfo]:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def num_params(self) -> int:
        return sum(layer.params for layer in self.layer_table())

    @property
    def macs(self) -> int:
        """Multiply-accumulates of one prediction (conv and dense layers; biases, activations, the
        rescale and the ConvLSTM gate element-wise products are not counted). For frame models
        that is per frame; for a recurrent model one prediction consumes `sequence_length`
        frames (what each camera frame costs a brain that runs it on a sliding window)."""
        return sum(layer.macs for layer in self.layer_table())

    # -- builders ----------------------------------------------------------------------------
    def build_torch(self, seed: int = 0):
        """A torch.nn.Module in eval mode with deterministic weights for `seed`. The global torch
        RNG state is left untouched."""
        import torch

        with torch.random.fork_rng(devices=[]):
            model = self._build_torch(int(seed))
        return model.eval()

    def build_keras(self, seed: int = 0):
        """A tf_keras functional Model with deterministic weights for `seed` (seeded
        initializers; the global TF/NumPy/Python RNG state is left untouched)."""
        register_tfmot_layers()  # so TF-MOT accepts the fixed Rescaling layer (see _tfmot.py)
        return self._build_keras(int(seed))

    def _build_torch(self, seed: int):  # pragma: no cover - abstract
        raise NotImplementedError

    def _build_keras(self, seed: int):  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<ModelSpec {self.name!r}: {self.num_params:,} params, {self.macs:,} MACs>"


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(name: str) -> Callable[[Any], Any]:
    """Decorator registering an architecture under `name`.

    Use it on a `ModelSpec` subclass (instantiated without arguments), on a zero-argument
    function returning a `ModelSpec`, or call it on a spec instance:
    `register_model("x")(MySpec(...))`. Returns the decorated object unchanged.
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"model name must be an identifier-like string, got {name!r}")

    def decorate(obj):
        if isinstance(obj, ModelSpec):
            spec = obj
        elif isinstance(obj, type) and issubclass(obj, ModelSpec):
            spec = obj()
        elif callable(obj):
            spec = obj()
            if not isinstance(spec, ModelSpec):
                raise TypeError(f"register_model({name!r}): the factory returned {type(spec)}")
        else:
            raise TypeError(f"register_model({name!r}) cannot register {obj!r}")
        old = _REGISTRY.get(name)
        if old is not None and _origin(old) != _origin(spec):
            raise ValueError(f"model {name!r} is already registered by {_origin(old)}")
        spec.name = name
        _REGISTRY[name] = spec
        return obj

    return decorate


def _origin(spec: ModelSpec) -> str:
    cls = type(spec)
    return f"{cls.__module__}.{cls.__qualname__}"


def model_names() -> list[str]:
    """Names of every registered model, sorted."""
    return sorted(_REGISTRY)


def get_model_spec(name: str) -> ModelSpec:
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise BadInputError(f"unknown model {name!r}; choose one of {', '.join(model_names())}") from None


def build_torch(name: str, seed: int = 0):
    """torch.nn.Module for `name`: input float32 (N, 66, 200, 3) raw pixels (recurrent:
    (N, T, 66, 200, 3)), output (N, 2). Eval mode; deterministic under `seed`."""
    return get_model_spec(name).build_torch(seed)


def build_keras(name: str, seed: int = 0):
    """tf_keras functional Model for `name`, same tensors as build_torch. Deterministic under `seed`."""
    return get_model_spec(name).build_keras(seed)


def macs(name: str) -> int:
    """Multiply-accumulates of one prediction of `name`, computed analytically (see ModelSpec.macs)."""
    return get_model_spec(name).macs


def layer_table(name: str) -> list[LayerInfo]:
    """The analytic layer plan of `name` (names, NHWC output shapes, params, MACs)."""
    return get_model_spec(name).layer_table()


def count_params(model) -> int:
    """Number of weights of a built model, trainable and non-trainable.

    Keras: `model.count_params()` (every weight variable). torch: every parameter, with or
    without requires_grad; buffers are not counted (none of the registered models has any).
    A model name (str) gives the analytic count of that architecture.
    """
    if isinstance(model, str):
        return get_model_spec(model).num_params
    if hasattr(model, "parameters") and callable(model.parameters):  # torch.nn.Module
        return int(sum(p.numel() for p in model.parameters()))
    if hasattr(model, "count_params"):  # Keras model or layer
        return int(model.count_params())
    raise BadInputError(f"count_params: expected a torch.nn.Module or a Keras model, got {type(model).__name__}")


# -- shape arithmetic shared by the specs ---------------------------------------------------------


def conv_out(n: int, kernel: int, stride: int, padding: str) -> int:
    """Output length of a convolution along one axis, TensorFlow semantics."""
    if padding == "valid":
        return (n - kernel) // stride + 1
    if padding == "same":
        return math.ceil(n / stride)
    raise ValueError(f"padding must be 'valid' or 'same', got {padding!r}")


def tf_same_pads(n: int, kernel: int, stride: int) -> tuple[int, int]:
    """(before, after) zero padding TensorFlow applies for padding='same' (the extra pixel, if
    the total is odd, goes after: bottom/right)."""
    out = math.ceil(n / stride)
    total = max((out - 1) * stride + kernel - n, 0)
    return total // 2, total - total // 2


def layer_seed(seed: int, index: int) -> int:
    """A distinct, deterministic 31-bit initializer seed for layer `index` under model `seed`."""
    import numpy as np

    state = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(index)]).generate_state(1)[0]
    return int(state) % (2**31 - 1)


def keras_macs(model) -> int | None:
    """Multiply-accumulates of one prediction counted from a built Keras model's own layers (Conv2D,
    DepthwiseConv2D, Dense; what ModelSpec.macs counts), for a model no registry entry describes,
    such as a user's .h5. None when it holds a layer with weights this count does not cover
    (a recurrent one)."""
    import numpy as np

    total = 0
    for layer in _keras_layers(model):
        kind = type(layer).__name__
        if not layer.weights or kind in ("BatchNormalization", "LayerNormalization", "Normalization", "Rescaling"):
            continue
        out = layer.output.shape
        if kind == "Conv2D":
            kh, kw, cin, cout = layer.kernel.shape
            total += int(np.prod(out[1:-1])) * cout * kh * kw * cin
        elif kind == "DepthwiseConv2D":
            kh, kw, cin, mult = layer.depthwise_kernel.shape
            total += int(np.prod(out[1:-1])) * cin * mult * kh * kw
        elif kind == "Dense":
            din, dout = layer.kernel.shape
            total += int(np.prod(out[1:-1])) * din * dout if len(out) > 2 else din * dout
        else:
            return None
    return int(total)


def _keras_layers(model):
    for layer in model.layers:
        if hasattr(layer, "layers"):  # a nested Model / Sequential
            yield from _keras_layers(layer)
        else:
            yield layer
