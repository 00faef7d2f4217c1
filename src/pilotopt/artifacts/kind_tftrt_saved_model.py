"""TF-TRT SavedModel (what the tftrt_* techniques write): a SavedModel folder whose graph holds
TRTEngineOp nodes, run by the `tftrt` runtime on an NVIDIA GPU. Checked before the plain SavedModel
kind, which would otherwise take it for a Keras-runnable (and trainable) model."""

from __future__ import annotations

from pathlib import Path

from pilotopt.artifacts.kind import Kind, register_kind

ENGINE_OP = b"TRTEngineOp"


def detect(path: Path) -> bool:
    pb = path / "saved_model.pb"
    return path.is_dir() and pb.is_file() and ENGINE_OP in pb.read_bytes()


register_kind(Kind("tftrt_saved_model", "tf", "tftrt", "TF-TRT SavedModel (TensorRT segments, NVIDIA GPU)",
                   detect, None, None, order=11))
