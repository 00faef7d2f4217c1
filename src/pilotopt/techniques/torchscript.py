"""`torchscript`: the PyTorch model traced with torch.jit.trace, in its own input layout. The traced
graph of these models has no batch-size constants; the check runs it at another batch size."""

from __future__ import annotations

from pilotopt.techniques._core import TORCH, Result, TechniqueContext, register_technique


@register_technique("torchscript", conversion=True, framework=TORCH, runtime="torchscript", order=101, tolerance=1e-4,
                    description="the PyTorch model traced to TorchScript (fp32 conversion)")
def apply(ctx: TechniqueContext) -> Result:
    torch = ctx.torch
    net = ctx.torch_model()
    with torch.inference_mode():
        traced = torch.jit.trace(net, torch.from_numpy(ctx.random_frames(2)))
    traced.save(str(ctx.out / "model.torchscript.pt"))
    return Result("model.torchscript.pt", {"model": ctx.torch_model_name, "torch": torch.__version__,
                                           "method": "torch.jit.trace"})
