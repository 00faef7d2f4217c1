"""`torch_export`: a torch.export ExportedProgram (.pt2) of the PyTorch model with a dynamic batch."""

from __future__ import annotations

from pilotopt.techniques._core import TORCH, Result, TechniqueContext, register_technique
from pilotopt.techniques._pt2e import MAX_BATCH, batch_dim


@register_technique("torch_export", conversion=True, framework=TORCH, runtime="torch_export", order=102, tolerance=1e-4,
                    description="the PyTorch model as a torch.export program (.pt2, fp32 conversion)")
def apply(ctx: TechniqueContext) -> Result:
    torch = ctx.torch
    example = torch.from_numpy(ctx.random_frames(2))  # > 1: torch.export specializes sizes 0 and 1
    program = torch.export.export(ctx.torch_model(), (example,), dynamic_shapes=({0: batch_dim()},))
    torch.export.save(program, str(ctx.out / "model.pt2"))
    return Result("model.pt2", {"model": ctx.torch_model_name, "torch": torch.__version__,
                                "dynamic_batch": [1, MAX_BATCH]})
