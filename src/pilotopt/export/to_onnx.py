"""`onnx_fp32`: the torch model exported with the dynamo-based torch.onnx exporter (opset 18,
weights inside the file, dynamic batch dimension), checked with onnx.checker."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from pilotopt.export import register_exporter
from pilotopt.export.base import TORCH, ExportContext

OPSET = 18
INPUT_NAME, OUTPUT_NAME = "frames", "vw"


def export_torch_onnx(net, example: np.ndarray, dest: Path, opset: int = OPSET) -> Path:
    """Export a torch module taking (N, ...) float32 frames to a self-contained ONNX file with a
    dynamic batch dimension; raises if the result fails onnx.checker."""
    import onnx
    import torch

    from pilotopt.export.to_torch_export import batch_dim

    with torch.inference_mode(False), torch.no_grad():
        program = torch.onnx.export(net, (torch.from_numpy(example),), dynamo=True, external_data=False,
                                    opset_version=opset, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                                    dynamic_shapes=({0: batch_dim()},), verbose=False, optimize=True)
    program.save(str(dest), external_data=False)
    onnx.checker.check_model(str(dest), full_check=True)
    return dest


@register_exporter("onnx_fp32", framework=TORCH, runtime="onnxruntime", artifact="model.onnx", order=40)
def export_onnx(ctx: ExportContext, dest: Path) -> dict:
    import onnx
    import torch

    shutil.copy2(ctx.onnx_file(), dest)
    model = onnx.load(str(dest), load_external_data=False)
    opset = max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    return {"model": ctx.model_name, "opset": int(opset), "ir_version": int(model.ir_version),
            "torch": torch.__version__, "onnx": onnx.__version__, "exporter": "torch.onnx dynamo"}
