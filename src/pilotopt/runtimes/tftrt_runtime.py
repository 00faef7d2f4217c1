"""TF-TRT predictor: a SavedModel converted by TrtGraphConverterV2 (pilotopt.techniques.tftrt), run
through its serving signature. Selected by name only (a TF-TRT SavedModel looks like any other).

UNTESTED WITHOUT A GPU: it needs an NVIDIA GPU and a TensorFlow built with TensorRT (<= 2.17); on
anything else loading raises RuntimeUnavailable with the reason, so the variant is skipped."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from pilotopt.errors import BadInputError, RuntimeUnavailable
from pilotopt.frameworks import import_tf
from pilotopt.runtimes import register_runtime
from pilotopt.runtimes.base import Predictor, load_failed


def nvidia_gpu() -> str | None:
    """The first GPU's name from nvidia-smi, or None (no driver / no GPU). Cheap: no TF import."""
    import subprocess

    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    names = [ln.strip() for ln in out.stdout.splitlines() if ln.strip()]
    return names[0] if out.returncode == 0 and names else None


def tensorflow_has_tensorrt() -> tuple[bool, str]:
    """Whether this TensorFlow build includes TF-TRT (imports TensorFlow; only asked on a GPU box)."""
    tf = import_tf(None)
    try:
        from tensorflow.compiler.tf2tensorrt import _pywrap_py_utils

        enabled = bool(_pywrap_py_utils.is_tensorrt_enabled())
    except ImportError:
        enabled = False
    if not enabled:
        return False, (f"TensorFlow {tf.__version__} is built without TensorRT (TF-TRT was dropped in "
                       "TensorFlow 2.18); use the tensorrt_* techniques, or TensorFlow <= 2.17 with TensorRT")
    return True, ""


def available() -> tuple[bool, str]:
    gpu = nvidia_gpu()
    if gpu is None:
        return False, "TF-TRT needs an NVIDIA GPU (nvidia-smi finds none on this machine)"
    return tensorflow_has_tensorrt()


@register_runtime("tftrt")
class TfTrtPredictor(Predictor):  # pragma: no cover - needs an NVIDIA GPU and TF with TensorRT
    runtime = "tftrt"

    def __init__(self, path: Path, threads: int | None = None, **_):
        ok, why = available()
        if not ok:
            raise RuntimeUnavailable(why)

        tf = self.tf = import_tf(threads)
        path = Path(path)
        if not (path / "saved_model.pb").is_file():
            raise BadInputError(f"'{path}' is not a TF-TRT SavedModel folder (no saved_model.pb)")
        try:
            self._fn = tf.saved_model.load(str(path)).signatures["serving_default"]
        except Exception as exc:
            raise load_failed("TF-TRT", path, exc) from None
        spec = list(self._fn.structured_input_signature[1].values())[0]
        self.sequence_length = int(spec.shape[1]) if len(spec.shape) == 5 else 1

    def predict(self, x: np.ndarray) -> np.ndarray:
        out = self._fn(self.tf.constant(np.ascontiguousarray(x, dtype=np.float32)))
        return np.asarray(next(iter(out.values())), dtype=np.float32).reshape(len(x), -1)
