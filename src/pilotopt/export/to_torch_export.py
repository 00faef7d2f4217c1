"""`torch_export`: a torch.export ExportedProgram (.pt2) with a dynamic batch dimension."""

from __future__ import annotations

from pathlib import Path

from pilotopt.export import register_exporter
from pilotopt.export.base import TORCH, ExportContext

MAX_BATCH = 4096


def batch_dim():
    import torch

    return torch.export.Dim("batch", min=1, max=MAX_BATCH)


@register_exporter("torch_export", framework=TORCH, runtime="torch_export", artifact="model.pt2", order=30)
def export_pt2(ctx: ExportContext, dest: Path) -> dict:
    import torch

    # the example batch must be > 1: torch.export specializes dimensions of size 0 and 1
    example = torch.from_numpy(ctx.frames(2))
    program = torch.export.export(ctx.torch_module(), (example,), dynamic_shapes=({0: batch_dim()},))
    torch.export.save(program, str(dest))
    return {"model": ctx.model_name, "torch": torch.__version__, "dynamic_batch": [1, MAX_BATCH]}
