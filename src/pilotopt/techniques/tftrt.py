"""`tftrt_fp32`, `tftrt_fp16`, `tftrt_int8`: TF-TRT (TrtGraphConverterV2) of the Keras baseline's
SavedModel; int8 is calibrated on preprocessed TRAINING frames. The result is a SavedModel whose
TensorRT segments run on an NVIDIA GPU, run by the `tftrt` predictor.

Needs an NVIDIA GPU AND a TensorFlow built with TensorRT. TensorFlow 2.18 and later ship without
TensorRT support (the pinned 2.21 included), so on a GPU machine with the pinned stack these are
skipped with that reason; the conversion runs with TensorFlow <= 2.17 built with TensorRT.
Adding a precision is one line in PRECISIONS."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pilotopt.errors import BadInputError, RuntimeUnavailable
from pilotopt.techniques._core import TF, Result, TechniqueContext, register_technique

PRECISIONS = {"fp32": "FP32", "fp16": "FP16", "int8": "INT8"}  # our name -> TrtPrecisionMode
ARTIFACT = "saved_model_trt"


@dataclass(frozen=True)
class TfTrtSettings:
    calibration_frames: int = 200  # int8 only: TRAINING frames fed through the calibration graph
    max_workspace_mb: int = 1024
    build_batch: int = 1  # engines are built ahead of time for this batch size

    def __post_init__(self):
        for key in ("calibration_frames", "max_workspace_mb", "build_batch"):
            if getattr(self, key) < 1:
                raise BadInputError(f"{key} must be >= 1, got {getattr(self, key)}")


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
    from pilotopt.frameworks import import_tf

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


def saved_model_of(ctx: TechniqueContext) -> Path:
    """The baseline as a SavedModel folder (an .h5 baseline is saved as one in a scratch folder)."""
    src = ctx.baseline.path
    if src.is_dir():
        return src
    dest = ctx.out / "_baseline_saved_model"
    ctx.keras_model().save(dest, save_format="tf")
    return dest


def convert(ctx: TechniqueContext, precision: str) -> Result:
    s: TfTrtSettings = ctx.settings
    ok, why = tensorflow_has_tensorrt()
    if not ok:
        raise RuntimeUnavailable(why)
    tf = ctx.tf
    from tensorflow.python.compiler.tensorrt import trt_convert as trt

    source = saved_model_of(ctx)
    mode = getattr(trt.TrtPrecisionMode, PRECISIONS[precision])
    converter = trt.TrtGraphConverterV2(input_saved_model_dir=str(source), precision_mode=mode,
                                        max_workspace_size_bytes=s.max_workspace_mb << 20,
                                        use_calibration=precision == "int8")
    record = {"precision": precision, "source": "saved_model" if source == ctx.baseline.path else "h5"}
    if precision == "int8":
        frames = ctx.train_frames(s.calibration_frames)

        def calibration_input():
            for i in range(len(frames)):
                yield (tf.constant(frames[i: i + 1]),)

        converter.convert(calibration_input_fn=calibration_input)
        record.update(calibration_frames=int(len(frames)), calibration_from="train")
    else:
        converter.convert()
    sample = np.zeros((s.build_batch, *frames_shape(ctx)), np.float32)
    converter.build(input_fn=lambda: iter([(tf.constant(sample),)]))
    converter.save(str(ctx.out / ARTIFACT))
    if source != ctx.baseline.path:
        shutil.rmtree(source, ignore_errors=True)
    return Result(ARTIFACT, record)


def frames_shape(ctx: TechniqueContext) -> tuple[int, ...]:
    return tuple(int(d) for d in ctx.keras_model().input_shape[1:])


def _register(name: str, order: int) -> None:
    register_technique(f"tftrt_{name}", framework=TF, runtime="tftrt", order=order, needs_data=name == "int8",
                       settings=TfTrtSettings, available=available,
                       description=f"TF-TRT {name} SavedModel (NVIDIA GPU, TensorFlow built with TensorRT)")(
        lambda ctx, _p=name: convert(ctx, _p))


for _i, _name in enumerate(PRECISIONS):
    _register(_name, 90 + _i)
