"""`onnx_fp16`: the fp32 ONNX with weights and compute converted to fp16 (onnxconverter-common),
keeping float32 input and output so callers feed the same frames. ONNX Runtime's CPU provider
lacks fp16 kernels for some ops (Conv among them) and runs those in fp32 behind inserted Casts;
the record counts those Casts, so a CPU timing of this variant is not mistaken for fp16 compute."""

from __future__ import annotations

from pilotopt.techniques import _onnx
from pilotopt.techniques._core import ONNX_SOURCES, TORCH, Result, TechniqueContext, register_technique


def cpu_fallback_casts(path) -> int:
    """Cast nodes ONNX Runtime's CPU provider adds to run fp16 nodes it has no fp16 kernel for."""
    import onnx
    import onnxruntime as ort

    with _onnx.scratch() as tmp:
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        opts.optimized_model_filepath = str(tmp / "session.onnx")
        opts.log_severity_level = 3
        ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
        after = sum(n.op_type == "Cast" for n in onnx.load(opts.optimized_model_filepath).graph.node)
    return int(after - sum(n.op_type == "Cast" for n in onnx.load(str(path)).graph.node))


@register_technique("onnx_fp16", framework=TORCH, accepts=ONNX_SOURCES, runtime="onnxruntime", order=210, tolerance=5e-2,
                    description="ONNX fp16 weights and compute (float32 I/O), run by ONNX Runtime")
def apply(ctx: TechniqueContext) -> Result:
    import onnx
    from onnxconverter_common import float16

    dest = ctx.out / _onnx.ARTIFACT
    with _onnx.scratch() as tmp:
        details = _onnx.export_baseline(ctx, tmp / "fp32.onnx")
        model = float16.convert_float_to_float16(onnx.load(str(tmp / "fp32.onnx")), keep_io_types=True)
    onnx.save(model, str(dest))
    onnx.checker.check_model(str(dest))
    return Result(_onnx.ARTIFACT, {**details, "precision": "fp16", "keep_io_types": True,
                                   "converter": "onnxconverter_common.float16", **_onnx.describe(dest),
                                   "ort_cpu_fallback_casts": cpu_fallback_casts(dest)})
