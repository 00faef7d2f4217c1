"""`torch_static`: static int8 post-training quantization via PT2E (torchao): torch.export ->
prepare_pt2e with the x86 quantizer (int8 per-channel weights, uint8 per-tensor activations) ->
calibration on TRAINING frames -> convert_pt2e -> `.pt2` with a dynamic batch (`torch_export` runtime)."""

from __future__ import annotations

from dataclasses import dataclass

from pilotopt.errors import BadInputError
from pilotopt.techniques import _pt2e
from pilotopt.techniques._core import TORCH, Result, TechniqueContext, register_technique


@dataclass(frozen=True)
class StaticSettings:
    calibration_frames: int = 200  # TRAINING frames run through the observers for activation ranges
    batch_size: int = 32  # calibration batch

    def __post_init__(self):
        for key in ("calibration_frames", "batch_size"):
            if getattr(self, key) < 1:
                raise BadInputError(f"{key} must be >= 1, got {getattr(self, key)}")


@register_technique("torch_static", framework=TORCH, runtime="torch_export", order=120, needs_data=True,
                    settings=StaticSettings, available=_pt2e.available,
                    description="PT2E static int8 PTQ (x86 quantizer), calibrated on training frames, .pt2")
def apply(ctx: TechniqueContext) -> Result:
    s: StaticSettings = ctx.settings
    name, record = _pt2e.ptq(ctx, ctx.torch_model(), s.calibration_frames, s.batch_size)
    return Result(name, record)
