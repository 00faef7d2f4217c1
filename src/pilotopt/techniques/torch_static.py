"""`torch_static`: static int8 post-training quantization via PT2E (torchao): torch.export ->
prepare_pt2e -> calibration on TRAINING frames -> convert_pt2e. Backend `executorch` (default):
the XNNPACK quantizer (int8 per-channel weights, int8 activations) and the converted graph lowered
to ExecuTorch's XNNPACK delegate, so it RUNS int8 kernels (`.pte`, `executorch` runtime, batch 1).
Backend `pt2`: the x86 quantizer (uint8 activations) saved as a `.pt2` with a dynamic batch
(`torch_export` runtime), whose q/dq runs in fp32 (slower than fp32 eager)."""

from __future__ import annotations

from dataclasses import dataclass

from pilotopt.techniques import _pt2e
from pilotopt.techniques._core import TORCH, Result, TechniqueContext, register_technique
from pilotopt.techniques._settings import Settings, calibration, setting


@dataclass(frozen=True)
class StaticSettings(Settings):
    calibration_frames: int = calibration(note="run through the observers")
    batch_size: int = setting(32, "calibration batch", ge=1)
    backend: str = _pt2e.backend_setting()




@register_technique("torch_static", framework=TORCH, runtime="executorch", order=120, needs_data=True,
                    settings=StaticSettings, available=_pt2e.available,
                    description="PT2E static int8 PTQ calibrated on training frames, lowered to ExecuTorch "
                                "XNNPACK int8 kernels (.pte; backend pt2: x86 .pt2)")
def apply(ctx: TechniqueContext) -> Result:
    s: StaticSettings = ctx.settings
    name, record, _ = _pt2e.ptq(ctx, ctx.torch_model(), s.calibration_frames, s.batch_size, backend=s.backend)
    return Result(name, record, runtime=RUNTIMES[s.backend])


RUNTIMES = {"executorch": "executorch", "pt2": "torch_export"}
