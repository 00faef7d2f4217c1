"""`tensorrt_fp32` / `tensorrt_fp16`: a serialized TensorRT engine built from the fp32 ONNX with a
dynamic-batch optimization profile (min 1, opt 1, max MAX_BATCH).

UNTESTED ON CPU MACHINES: without an NVIDIA GPU and the tensorrt package every target here is
recorded as skipped. Precision flags (TensorRT 10 builder flags):
  fp32  TF32 cleared, so an "fp32" engine really computes in fp32 (TF32 is on by default on
        Ampere and later GPUs, which would make an fp32 row quietly lower-precision);
  fp16  BuilderFlag.FP16;
  int8  BuilderFlag.INT8 for an explicitly quantized (Q/DQ) ONNX: TensorRT takes the scales from
        the Q/DQ nodes, no calibrator. `build_engine(..., precision="int8")` is for the int8
        techniques; there is no int8 target from the fp32 ONNX.
TensorRT 11 networks are always strongly typed (the precision comes from the ONNX types), and
there the FP16/INT8 flags may be absent: asking for them then raises RuntimeUnavailable."""

from __future__ import annotations

from pathlib import Path

from pilotopt.errors import RuntimeUnavailable
from pilotopt.export import register_exporter
from pilotopt.export.base import TORCH, ExportContext

MAX_BATCH = 64
WORKSPACE_BYTES = 1 << 30


def build_engine(onnx_path: Path, dest: Path, precision: str = "fp32", max_batch: int = MAX_BATCH) -> dict:
    from pilotopt.runtimes.tensorrt_runtime import require_tensorrt

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


@register_exporter("tensorrt_fp32", framework=TORCH, runtime="tensorrt", artifact="model.engine", order=55)
def export_tensorrt_fp32(ctx: ExportContext, dest: Path) -> dict:
    from pilotopt.runtimes.tensorrt_runtime import require_tensorrt

    require_tensorrt()  # skip before exporting the ONNX
    return build_engine(ctx.onnx_file(), dest, "fp32")


@register_exporter("tensorrt_fp16", framework=TORCH, runtime="tensorrt", artifact="model.engine",
                   precision="fp16", default=False, order=56, tolerance=5e-2)
def export_tensorrt_fp16(ctx: ExportContext, dest: Path) -> dict:
    from pilotopt.runtimes.tensorrt_runtime import require_tensorrt

    require_tensorrt()
    return build_engine(ctx.onnx_file(), dest, "fp16")
