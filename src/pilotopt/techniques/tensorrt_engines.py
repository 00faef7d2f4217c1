"""`tensorrt_fp32`, `tensorrt_fp16`, `tensorrt_int8`: serialized TensorRT engines (NVIDIA GPU only)
built from the baseline's ONNX by build_engine below (dynamic batch 1..max_batch,
TF32 off for fp32, BuilderFlag.FP16 / INT8) and run by the `tensorrt` predictor.

int8 is explicit quantization: the ONNX is first quantized to Q/DQ by ONNX Runtime with symmetric
int8 activations (what TensorRT requires) calibrated on TRAINING frames, and TensorRT takes the
scales from the Q/DQ nodes. That replaces TensorRT's own IInt8Calibrator (implicit quantization),
deprecated in TensorRT 10, and build_engine's int8 path expects exactly such a Q/DQ ONNX.

UNTESTED WITHOUT A GPU: on machines without nvidia-smi or the tensorrt package `available()` says
so cheaply and all three are skipped. Adding a precision is one line in PRECISIONS."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from pilotopt.errors import RuntimeUnavailable
from pilotopt.runtimes import tftrt_runtime
from pilotopt.runtimes.tensorrt_runtime import require_tensorrt
from pilotopt.techniques import _onnx
from pilotopt.techniques._core import ONNX_SOURCES, TORCH, Result, TechniqueContext, register_technique
from pilotopt.techniques._settings import Settings, calibration, setting

ARTIFACT = "model.engine"
PRECISIONS = {"fp32": 1e-3, "fp16": 5e-2, "int8": None}  # precision -> tolerance vs the baseline


MAX_BATCH = 64
WORKSPACE_BYTES = 1 << 30


def build_engine(onnx_path: Path, dest: Path, precision: str = "fp32", max_batch: int = MAX_BATCH) -> dict:
    trt, _ = require_tensorrt()  # RuntimeUnavailable on CPU machines, before touching CUDA
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # explicit batch is the only mode in TensorRT 10
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(Path(onnx_path).read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"TensorRT could not parse '{onnx_path}': {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
    flags = {"fp32": [], "fp16": ["FP16"], "int8": ["INT8"]}[precision]
    for flag in flags:
        if not hasattr(trt.BuilderFlag, flag):
            raise RuntimeUnavailable(f"TensorRT {trt.__version__} has no {flag} builder flag (strongly typed "
                                     f"networks); export an ONNX already in {precision}")
        config.set_flag(getattr(trt.BuilderFlag, flag))
    if precision == "fp32" and hasattr(trt.BuilderFlag, "TF32"):
        config.clear_flag(trt.BuilderFlag.TF32)
    inp = network.get_input(0)
    sample = tuple(inp.shape)[1:]
    profile = builder.create_optimization_profile()
    profile.set_shape(inp.name, (1, *sample), (1, *sample), (max_batch, *sample))
    config.add_optimization_profile(profile)
    engine = builder.build_serialized_network(network, config)
    if engine is None:
        raise RuntimeError("TensorRT engine build failed (see the TensorRT log)")
    dest.write_bytes(bytes(engine))
    return {"tensorrt": trt.__version__, "precision": precision, "max_batch": max_batch, "from": "onnx_fp32"}


@dataclass(frozen=True)
class TensorRTSettings(Settings):
    max_batch: int = setting(MAX_BATCH, "largest batch of the engine's optimization profile", ge=1)
    calibration_frames: int = calibration(note="int8 only")


def available() -> tuple[bool, str]:
    """Cheap: asks nvidia-smi and looks for the package without importing TensorRT or CUDA."""
    missing = []
    if tftrt_runtime.nvidia_gpu() is None:
        missing.append("nvidia-smi finds no GPU")
    if importlib.util.find_spec("tensorrt") is None:
        missing.append("the tensorrt package is not installed")
    if missing:
        return False, f"needs an NVIDIA GPU with TensorRT (none found: {'; '.join(missing)})"
    return True, ""


def build(ctx: TechniqueContext, precision: str) -> Result:  # pragma: no cover - needs an NVIDIA GPU
    s: TensorRTSettings = ctx.settings
    require_tensorrt()  # skipped (CUDA unusable) before any export work
    with _onnx.scratch() as tmp:
        src = tmp / "fp32.onnx"
        details = _onnx.export_baseline(ctx, src)
        if precision == "int8":
            details.update(_onnx.quantize_static_qdq(ctx, tmp / "fp32.onnx", tmp / "qdq.onnx",
                                                     n_frames=s.calibration_frames, per_channel=True,
                                                     activation_type="int8", symmetric=True))
            src = tmp / "qdq.onnx"
        details.update(build_engine(src, ctx.out / ARTIFACT, precision, max_batch=s.max_batch))
    if precision == "int8":
        details["from"] = "onnx Q/DQ (symmetric int8, calibrated by ONNX Runtime)"
    return Result(ARTIFACT, details)


def _register(precision: str, order: int) -> None:
    register_technique(f"tensorrt_{precision}", framework=TORCH, accepts=ONNX_SOURCES, runtime="tensorrt", order=order,
                       needs_data=precision == "int8", settings=TensorRTSettings, available=available,
                       tolerance=PRECISIONS[precision],
                       description=f"TensorRT {precision} engine from the ONNX export (NVIDIA GPU)")(
        lambda ctx, _p=precision: build(ctx, _p))


for _i, _precision in enumerate(PRECISIONS):
    _register(_precision, 260 + 10 * _i)
