"""`torch_qat`: quantization-aware training via PT2E (torchao): prepare_qat_pt2e inserts real
fake-quant modules, a short fine-tune on the TRAINING split runs through them (the record counts
the modules, their calls during training and their effect on the outputs), then convert_pt2e.
Backend `executorch` (default): the XNNPACK quantizer's QAT config, lowered to ExecuTorch's XNNPACK
delegate (int8 kernels, `.pte`); backend `pt2`: the x86 quantizer, a `.pt2` with a dynamic batch.

Weights that are exactly zero in the input (a pruned model, e.g. after `torch_prune_local` in the
chain `torch_prune_quant`) are put back to zero after every optimizer step, so QAT keeps the
sparsity; symmetric weight quantization maps 0 to 0, and the record shows the zeros survived in
the int8 weights, per layer."""

from __future__ import annotations

from dataclasses import dataclass

from pilotopt.techniques import _pt2e
from pilotopt.techniques._core import TORCH, Result, TechniqueContext, register_technique
from pilotopt.techniques._torch_fit import FineTuneSettings
from pilotopt.techniques.torch_prune_local import zero_masks
from pilotopt.techniques.torch_static import RUNTIMES


@dataclass(frozen=True)
class QatSettings(FineTuneSettings):
    backend: str = _pt2e.backend_setting()


@register_technique("torch_qat", framework=TORCH, runtime="executorch", order=130, needs_data=True,
                    settings=QatSettings, available=_pt2e.available,
                    description="PT2E quantization-aware training (fake-quant fine-tune, keeps zero weights), "
                                "lowered to ExecuTorch XNNPACK int8 kernels (.pte; backend pt2: x86 .pt2)")
def apply(ctx: TechniqueContext) -> Result:
    s: QatSettings = ctx.settings
    net = ctx.torch_model()
    masks = {k: m for k, m in zero_masks(net).items() if not bool(m.all())}  # layers with zero weights

    def keep_zeros(prepared) -> None:
        params = dict(prepared.named_parameters())
        for key, mask in masks.items():
            if key not in params:
                raise RuntimeError(f"the QAT graph has no parameter '{key}' to keep the zeros of")
            params[key].mul_(mask)

    name, record, program = _pt2e.qat(ctx, net, s, after_step=keep_zeros if masks else None, backend=s.backend)
    if masks:
        int8 = _pt2e.int8_weights(program)
        kept = {layer: bool((int8[layer][~masks[f"{layer}.weight"]] == 0).all()) if layer in int8 else False
                for layer in (k[: -len(".weight")] for k in masks)}
        record["input_zeros_kept_in_int8_per_layer"] = kept
        if not all(kept.values()):
            raise RuntimeError(f"zero weights of the input came back non-zero in the int8 weights of "
                               f"{', '.join(k for k, v in kept.items() if not v)}")
    return Result(name, record, runtime=RUNTIMES[s.backend])
