"""`torchscript`: the model traced with torch.jit.trace (batch-agnostic: the traced graph has no
batch-size constants for these models; the check runs it at another batch size than the trace)."""

from __future__ import annotations

from pathlib import Path

from pilotopt.export import register_exporter
from pilotopt.export.base import TORCH, ExportContext


@register_exporter("torchscript", framework=TORCH, runtime="torchscript", artifact="model.torchscript.pt",
                   order=20)
def export_torchscript(ctx: ExportContext, dest: Path) -> dict:
    import torch

    net = ctx.torch_module()
    with torch.inference_mode():
        traced = torch.jit.trace(net, torch.from_numpy(ctx.frames(2)))
    traced.save(str(dest))
    return {"model": ctx.model_name, "torch": torch.__version__, "method": "torch.jit.trace"}
