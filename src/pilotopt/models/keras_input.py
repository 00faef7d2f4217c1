"""Loading a Keras model the way the techniques need it, for models trained elsewhere too.

* **Transposed input declarations.** DeepLearningStudio's TF PilotNet is declared with input
  (200, 66, 3) but trained on (66, 200, 3) arrays ('same' padding makes the flatten size 14,400
  either way). Such a model is re-declared to the input contract's size with the same weights,
  when every layer allows it (checked by rebuilding it), so a converted .tflite takes the frames
  the evaluation feeds.
* **An input BatchNormalization** (DLS models start with one) is refused by TF-MOT's
  quantize_model. At inference it is the per-channel affine x * a + b, which is replaced, exactly,
  by a fixed Rescaling layer (TF-MOT accepts it; see _tfmot.py) under the same name."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np

from pilotopt.errors import BadInputError, one_line
from pilotopt.models._tfmot import register_tfmot_layers


def load_keras(path: Path, sample_shape: tuple | None = None, fold_input_batchnorm: bool = True):
    import tf_keras as keras

    register_tfmot_layers()
    try:
        model = keras.models.load_model(path, compile=False)
    except Exception as exc:  # noqa: BLE001
        raise BadInputError(f"cannot load Keras model '{path}': {one_line(exc, limit=200)}") from None
    return adapt_keras(model, sample_shape, fold_input_batchnorm, where=str(path))


def input_batchnorm(model):
    """The BatchNormalization layer applied straight to the model's input (per channel), if any."""
    import tf_keras as keras

    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    if layers and isinstance(layers[0], keras.layers.BatchNormalization):
        bn = layers[0]
        axis = bn.axis[0] if isinstance(bn.axis, (list, tuple)) else bn.axis
        if axis in (-1, len(model.input_shape) - 1):
            return bn
    return None


def batchnorm_affine(bn) -> tuple[np.ndarray, np.ndarray]:
    """(a, b) with BN(x) = a * x + b at inference."""
    gamma = bn.gamma.numpy() if bn.gamma is not None else 1.0
    beta = bn.beta.numpy() if bn.beta is not None else 0.0
    a = gamma / np.sqrt(bn.moving_variance.numpy() + bn.epsilon)
    b = beta - bn.moving_mean.numpy() * a
    return np.asarray(a, np.float32) * np.ones_like(bn.moving_mean.numpy()), np.asarray(b, np.float32)


def adapt_keras(model, sample_shape: tuple | None = None, fold_input_batchnorm: bool = True, where: str = "the model"):
    """`model`, or a rebuilt copy with the contract's input size and the input BatchNorm folded."""
    declared = tuple(model.input_shape[1:])
    redeclare = sample_shape is not None and declared != tuple(sample_shape)
    bn = input_batchnorm(model) if fold_input_batchnorm else None
    if not redeclare and bn is None:
        return model
    if redeclare and (len(declared) != len(sample_shape) or declared[-1] != sample_shape[-1]):
        raise BadInputError(f"{where} declares input {declared}, which cannot be re-declared as {tuple(sample_shape)}; "
                            "pass --input with the contract it was trained with")
    config = copy.deepcopy(model.get_config())
    if redeclare:
        _set_input_shape(config, (None, *sample_shape))
    if bn is not None:
        a, b = batchnorm_affine(bn)
        for layer in config["layers"]:
            if layer["config"].get("name") == bn.name:
                layer["class_name"] = "Rescaling"
                layer["config"] = {"name": bn.name, "trainable": False, "dtype": "float32",
                                   "scale": a.tolist(), "offset": b.tolist(),
                                   **({"batch_input_shape": layer["config"]["batch_input_shape"]}
                                      if "batch_input_shape" in layer["config"] else {})}
    try:
        rebuilt = model.__class__.from_config(config)
    except Exception as exc:  # noqa: BLE001 - a layer that fixes the spatial size
        raise BadInputError(f"{where} declares input {declared} and cannot be rebuilt for {tuple(sample_shape or declared)} "
                            f"({one_line(exc, limit=160)}); pass --input with the "
                            "contract it was trained with") from None
    for layer in rebuilt.layers:
        if bn is not None and layer.name == bn.name:
            continue
        try:
            layer.set_weights(model.get_layer(layer.name).get_weights())
        except ValueError as exc:
            raise BadInputError(f"{where}: layer '{layer.name}' does not keep its weights at input "
                                f"{tuple(sample_shape or declared)} ({one_line(exc, limit=160)}); pass --input "
                                "with the contract it was trained with") from None
    rebuilt.pilotopt_adapted = {"redeclared_from": list(declared) if redeclare else None,
                                "input_batchnorm_folded": bn.name if bn is not None else None}
    return rebuilt


def _set_input_shape(config: dict, shape: tuple) -> None:
    found = False
    for layer in config.get("layers", []):
        cfg = layer.get("config", {})
        if "batch_input_shape" in cfg:
            cfg["batch_input_shape"] = list(shape)
            found = True
    if not found:
        raise BadInputError("the model's config names no input shape to re-declare")
