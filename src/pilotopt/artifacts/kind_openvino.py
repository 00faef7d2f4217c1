"""OpenVINO IR: model.xml (root element <net>) with its weights in model.bin beside it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pilotopt.artifacts.kind import Kind, head, register_kind
from pilotopt.artifacts.tally import Tally


def _xml(path: Path) -> Path | None:
    if path.is_dir():
        return next(iter(sorted(path.glob("*.xml"))), None)
    return path


def detect(path: Path) -> bool:
    xml = _xml(path)
    if xml is None or not xml.is_file():
        return False
    start = head(xml, 512).lstrip()
    return start.startswith(b"<?xml") and b"<net" in head(xml, 4096)


def count(path: Path) -> dict | None:
    import openvino as ov

    model = ov.Core().read_model(str(_xml(path)))
    tally = Tally()
    for op in model.get_ordered_ops():
        if op.get_type_name() != "Constant":
            continue
        et = op.get_output_element_type(0).get_type_name()
        if et in ("i64", "i32", "boolean", "u64", "u32"):
            continue
        try:
            arr = op.get_data()
        except Exception:  # noqa: BLE001 - packed low-bit types have no NumPy view
            continue
        tally.add(np.asarray(arr, dtype=np.float32) if arr.dtype.kind in "iu" else arr)
    return tally.result("OpenVINO constants")


def declared_input(path: Path) -> tuple | None:
    import openvino as ov

    shape = ov.Core().read_model(str(_xml(path))).inputs[0].get_partial_shape()
    return tuple(d.get_length() if d.is_static else None for d in list(shape)[1:])


register_kind(Kind("openvino", "portable", "openvino", "OpenVINO IR (.xml + .bin)", detect, count, declared_input,
                   order=20))
