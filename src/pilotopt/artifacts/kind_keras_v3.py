"""Keras v3 archive (.keras): a zip holding config.json and model.weights.h5."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from pilotopt.artifacts.kind import Kind, register_kind, zip_members


def detect(path: Path) -> bool:
    names = zip_members(path)
    return "config.json" in names and "model.weights.h5" in names


def declared_input(path: Path) -> tuple | None:
    with zipfile.ZipFile(path) as z:
        config = json.loads(z.read("config.json"))
    for layer in config.get("config", {}).get("layers") or []:
        cfg = layer.get("config", {})
        shape = cfg.get("batch_input_shape") or cfg.get("batch_shape")
        if shape:
            return tuple(shape[1:])
    return None


register_kind(Kind("keras_v3", "tf", "keras", "Keras v3 archive (.keras)", detect, None, declared_input,
                   trainable=True, order=10))
