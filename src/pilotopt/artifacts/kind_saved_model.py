"""TensorFlow SavedModel folder (saved_model.pb + variables/), Keras-saved or not."""

from __future__ import annotations

from pathlib import Path

from pilotopt.artifacts.kind import Kind, register_kind
from pilotopt.artifacts.tally import Tally
from pilotopt.frameworks import import_tf


def detect(path: Path) -> bool:
    return path.is_dir() and (path / "saved_model.pb").is_file()


def count(path: Path) -> dict | None:
    if not (path / "variables").is_dir():
        return None

    tf = import_tf()
    reader = tf.train.load_checkpoint(str(path / "variables" / "variables"))
    tally = Tally()
    for name in sorted(reader.get_variable_to_shape_map()):
        if (not name.endswith(".ATTRIBUTES/VARIABLE_VALUE") or "OPTIMIZER_SLOT" in name
                or name.startswith(("optimizer", "save_counter", "keras_api/metrics"))):
            continue
        tally.add(reader.get_tensor(name))
    return tally.result("SavedModel variables")


register_kind(Kind("saved_model", "tf", "keras", "TensorFlow SavedModel folder", detect, count, None, trainable=True,
                   order=12))
