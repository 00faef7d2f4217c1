"""`executorch_int8`: PT2E static int8 with the XNNPACK quantizer (symmetric per-channel int8
weights, int8 activations calibrated on TRAINING frames), lowered to ExecuTorch's XNNPACK delegate:
the PyTorch int8 variant that runs int8 kernels (torch_static's .pt2 runs q/dq in fp32)."""

from __future__ import annotations

from dataclasses import dataclass

from pilotopt.errors import BadInputError
from pilotopt.techniques import _executorch
from pilotopt.techniques._core import TORCH, Result, TechniqueContext, register_technique


@dataclass(frozen=True)
class ExecuTorchInt8Settings:
    calibration_frames: int = 200  # TRAINING frames run through the observers
    per_channel: bool = True  # per-channel weight scales (per-tensor when False)

    def __post_init__(self):
        if self.calibration_frames < 1:
            raise BadInputError(f"calibration_frames must be >= 1, got {self.calibration_frames}")


@register_technique("executorch_int8", framework=TORCH, runtime="executorch", order=191, needs_data=True,
                    settings=ExecuTorchInt8Settings, available=_executorch.available,
                    description="PT2E int8 (XNNPACK quantizer) lowered to ExecuTorch XNNPACK: real int8 kernels (.pte)")
def apply(ctx: TechniqueContext) -> Result:
    s: ExecuTorchInt8Settings = ctx.settings
    return _executorch.int8(ctx, s.calibration_frames, s.per_channel)
