"""Keras (tf_keras) HDF5 model: an HDF5 file whose root carries a `model_config` attribute."""

from __future__ import annotations

import json
from pathlib import Path

from pilotopt.artifacts.kind import Kind, head, register_kind
from pilotopt.artifacts.tally import Tally

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def detect(path: Path) -> bool:
    if head(path, 8) != HDF5_SIGNATURE:
        return False
    import h5py

    with h5py.File(path, "r") as f:
        return "model_config" in f.attrs


def count(path: Path) -> dict | None:
    import h5py

    tally = Tally()
    with h5py.File(path, "r") as f:
        root = f["model_weights"] if "model_weights" in f else f

        def visit(_name, obj):
            if isinstance(obj, h5py.Dataset):
                tally.add(obj[()])

        root.visititems(visit)
    return tally.result("Keras h5 weights")


def model_config(path: Path) -> dict:
    import h5py

    with h5py.File(path, "r") as f:
        raw = f.attrs["model_config"]
    return json.loads(raw.decode() if isinstance(raw, bytes) else raw)


def declared_input(path: Path) -> tuple | None:
    """The first layer's batch_input_shape, read from the config without TensorFlow."""
    config = model_config(path).get("config", {})
    layers = config.get("layers") or []
    for layer in layers:
        shape = layer.get("config", {}).get("batch_input_shape") or layer.get("config", {}).get("batch_shape")
        if shape:
            return tuple(shape[1:])
    return None


register_kind(Kind("keras_h5", "tf", "keras", "Keras HDF5 model (.h5)", detect, count, declared_input, trainable=True,
                   order=10))
