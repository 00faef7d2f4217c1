"""`torch`: the trained PyTorch model as-is (the PyTorch baseline, run eagerly in fp32)."""

from __future__ import annotations

from pilotopt.techniques._core import FRAMEWORK_KINDS, TORCH, Result, TechniqueContext, register_technique


@register_technique("torch", framework=TORCH, runtime="torch", order=100, tolerance=1e-5,
                    accepts=(*FRAMEWORK_KINDS[TORCH], "torchscript"),
                    description="the trained PyTorch model as-is (baseline, eager fp32)")
def apply(ctx: TechniqueContext) -> Result:
    if ctx.baseline.kind.name == "torchscript":  # a user's trace: kept as it is, run by TorchScript
        return Result(ctx.copy_baseline(), {"model": "torchscript"}, runtime="torchscript")
    net = ctx.torch_model()  # proves it loads; the artifact is the unchanged file
    name = ctx.copy_baseline()
    return Result(name, {"params": int(sum(p.numel() for p in net.parameters())), "model": ctx.torch_model_name})
