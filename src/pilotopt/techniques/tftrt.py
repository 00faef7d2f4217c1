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

from pilotopt.errors import RuntimeUnavailable
from pilotopt.runtimes.tftrt_runtime import available, tensorflow_has_tensorrt
from pilotopt.techniques._core import TF, Result, TechniqueContext, register_technique
from pilotopt.techniques._settings import Settings, calibration, setting

PRECISIONS = {"fp32": "FP32", "fp16": "FP16", "int8": "INT8"}  # our name -> TrtPrecisionMode
ARTIFACT = "saved_model_trt"


@dataclass(frozen=True)
class TfTrtSettings(Settings):
    calibration_frames: int = calibration(note="int8 only: fed through the calibration graph")
    max_workspace_mb: int = setting(1024, "TensorRT workspace memory in MB", ge=1)
    build_batch: int = setting(1, "batch size the engines are built ahead of time for", ge=1)


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
