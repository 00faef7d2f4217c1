"""The model registry: every architecture, in PyTorch and in Keras (tf_keras), by name.

    from pilotopt.models import model_names, get_model_spec, build_torch, build_keras, count_params, macs
    spec = get_model_spec("pilotnet")          # spec.name, .description, .sequence_length, .input_shape
    m = build_torch("pilotnet", seed=0)        # torch.nn.Module (eval mode)
    k = build_keras("pilotnet", seed=0)        # tf_keras functional Model
    assert count_params(m) == count_params(k) == spec.num_params
    keras_to_torch(k, m)                       # now both compute the same function

Tensor convention, identical in both frameworks: input float32 NHWC raw pixels in [0, 255],
(N, 66, 200, 3), or (N, T, 66, 200, 3) for recurrent models (spec.sequence_length = T); a fixed
Rescaling x / 127.5 - 1 inside the model (no BatchNormalization anywhere); output (N, 2) float32,
linear (normalized v, w).

Adding a model = adding one module in this package that registers a spec with
`@register_model("name")`; every module here whose name does not start with "_" is imported
below. Importing this package does not import torch or TensorFlow.
"""

from __future__ import annotations

import importlib
import pkgutil

from pilotopt.models._registry import (
    INPUT_SHAPE,
    NORM_OFFSET,
    NORM_SCALE,
    LayerInfo,
    ModelSpec,
    build_keras,
    build_torch,
    count_params,
    get_model_spec,
    keras_macs,
    layer_table,
    macs,
    model_names,
    register_model,
)
from pilotopt.models._tfmot import register_tfmot_layers
from pilotopt.models._transfer import keras_to_torch, torch_to_keras


def _import_model_modules() -> None:
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")


_import_model_modules()

__all__ = [
    "INPUT_SHAPE",
    "NORM_OFFSET",
    "NORM_SCALE",
    "LayerInfo",
    "ModelSpec",
    "build_keras",
    "keras_macs",
    "build_torch",
    "count_params",
    "get_model_spec",
    "keras_to_torch",
    "layer_table",
    "macs",
    "model_names",
    "register_model",
    "torch_to_keras",
    "register_tfmot_layers",
]
