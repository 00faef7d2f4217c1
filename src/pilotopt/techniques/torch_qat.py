"""`torch_qat`: quantization-aware training via PT2E (torchao): prepare_qat_pt2e inserts real
fake-quant modules (int8 per-channel weights, uint8 activations), a short fine-tune on the TRAINING
split runs through them (the record counts the modules, their calls during training and their effect
on the outputs), then convert_pt2e -> `.pt2` with a dynamic batch (`torch_export` runtime)."""

from __future__ import annotations

from pilotopt.techniques import _pt2e
from pilotopt.techniques._core import TORCH, Result, TechniqueContext, register_technique
from pilotopt.techniques._torch_fit import FineTuneSettings


@register_technique("torch_qat", framework=TORCH, runtime="torch_export", order=130, needs_data=True,
                    settings=FineTuneSettings, available=_pt2e.available,
                    description="PT2E quantization-aware training (fake-quant fine-tune), int8 .pt2")
def apply(ctx: TechniqueContext) -> Result:
    name, record = _pt2e.qat(ctx, ctx.torch_model(), ctx.settings)
    return Result(name, record)
