"""`executorch_fp32`: the PyTorch model lowered to an ExecuTorch program on XNNPACK, fp32 (batch 1):
the fp32 parent every ExecuTorch int8 variant is timed against in the same runtime."""

from __future__ import annotations

from pilotopt.techniques import _executorch
from pilotopt.techniques._core import TORCH, Result, TechniqueContext, register_technique


@register_technique("executorch_fp32", conversion=True, framework=TORCH, runtime="executorch", order=190,
                    tolerance=1e-3, available=_executorch.available,
                    description="ExecuTorch program on the XNNPACK delegate, fp32 (.pte, batch 1)")
def apply(ctx: TechniqueContext) -> Result:
    return _executorch.fp32(ctx)
