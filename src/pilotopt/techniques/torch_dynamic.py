"""`torch_dynamic`: dynamic int8 quantization with torchao: `quantize_` with
Int8DynamicActivationInt8WeightConfig turns every Linear weight into an int8 per-channel tensor and
quantizes the activations on the fly (per row) for a real int8 matmul (aten._int_mm); the convs stay
fp32. Exported with a dynamic batch to a `.pt2` run by the `torch_export` runtime. On this CPU it is
slower than fp32 (quantize/dequantize around three small matmuls): a study row for correctness."""

from __future__ import annotations

from pilotopt.techniques import _pt2e
from pilotopt.techniques._core import TORCH, Result, TechniqueContext, register_technique


@register_technique("torch_dynamic", framework=TORCH, runtime="torch_export", order=110,
                    available=_pt2e.available,
                    description="torchao dynamic int8 (int8 Linear weights, activations quantized on the fly), .pt2")
def apply(ctx: TechniqueContext) -> Result:
    torch = ctx.torch
    from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_

    net = ctx.torch_model()  # a fresh copy; the baseline file is never touched
    # set_inductor_config=False: the artifact runs eagerly; do not change global inductor settings
    with torch.no_grad():
        quantize_(net, Int8DynamicActivationInt8WeightConfig(set_inductor_config=False))
    name, program = _pt2e.save(ctx, _pt2e.export(ctx, net, _pt2e.example(ctx)))
    record = {**_pt2e.quant_info(), **_pt2e.int8_record(program), "config": "Int8DynamicActivationInt8WeightConfig"}
    if not record["int8_weight_layers"]:
        raise RuntimeError("quantize_ left no int8 weights (the model has no Linear layer?)")
    record["quantizer"] = "torchao.quantize_"
    return Result(name, record)
