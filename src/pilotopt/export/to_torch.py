"""`torch`: the PyTorch checkpoint itself (architecture name + state dict), run eagerly."""

from __future__ import annotations

import shutil
from pathlib import Path

from pilotopt.export import register_exporter
from pilotopt.export.base import TORCH, ExportContext


@register_exporter("torch", framework=TORCH, runtime="torch", artifact="model.pt", order=10)
def export_torch(ctx: ExportContext, dest: Path) -> dict:
    shutil.copy2(ctx.baseline.path, dest)
    import torch

    return {"model": ctx.model_name, "torch": torch.__version__}
