"""`torch_prune_quant`: pruning-preserving QAT: per-layer L1 pruning as torch_prune_local (conv 30 %,
dense 50 %) with its fine-tune, then PT2E quantization-aware training in which the pruned weights
are put back to zero after every optimizer step, then convert_pt2e -> int8 `.pt2` (`torch_export`
runtime). Symmetric weight quantization maps 0 to 0, so the zeros survive in the int8 weights: the
record holds their sparsity per layer, read from the converted program."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from pilotopt.errors import BadInputError
from pilotopt.techniques import _pt2e
from pilotopt.techniques._core import TORCH, Result, TechniqueContext, register_technique
from pilotopt.techniques.torch_prune_local import (LocalPruneSettings, fine_tune_and_remove, prune_local,
                                                   zero_masks)


@dataclass(frozen=True)
class PruneQuantSettings(LocalPruneSettings):
    qat_epochs: int = 1  # QAT fine-tune epochs after the pruning fine-tune (`epochs`)

    def __post_init__(self):
        super().__post_init__()
        if self.qat_epochs < 1:
            raise BadInputError(f"qat_epochs must be >= 1, got {self.qat_epochs}")


@register_technique("torch_prune_quant", framework=TORCH, runtime="torch_export", order=160, needs_data=True,
                    settings=PruneQuantSettings, available=_pt2e.available,
                    description="L1 pruning (conv 30 %, dense 50 %) + zero-preserving PT2E QAT, int8 .pt2")
def apply(ctx: TechniqueContext) -> Result:
    s: PruneQuantSettings = ctx.settings
    net = ctx.torch_model()  # a fresh copy; the baseline file is never touched
    amounts = prune_local(net, s.conv_amount, s.dense_amount)
    pruned = fine_tune_and_remove(ctx, net, s)
    masks = zero_masks(net)

    def keep_zeros(prepared) -> None:
        params = dict(prepared.named_parameters())
        for key, mask in masks.items():
            if key not in params:
                raise RuntimeError(f"the QAT graph has no parameter '{key}' to keep the zeros of")
            params[key].mul_(mask)

    name, qrec = _pt2e.qat(ctx, net, dataclasses.replace(s, epochs=s.qat_epochs), after_step=keep_zeros)
    int8 = _pt2e.int8_weights(ctx.torch.export.load(str(ctx.out / name)))
    kept = {layer: bool((int8[layer][~masks[f"{layer}.weight"]] == 0).all()) if layer in int8 else False
            for layer in (k[: -len(".weight")] for k in masks)}
    record = {"pruning": "l1_unstructured (per layer)", "amount_per_layer": amounts,
              "pruned_sparsity_per_layer": pruned.pop("sparsity_per_layer"),
              "pruned_sparsity_overall": pruned.pop("sparsity_overall"),
              "prune_fine_tune_steps": pruned.pop("fine_tune_steps"), "prune_final_loss": pruned.pop("final_loss"),
              **{k: v for k, v in pruned.items() if k != "fine_tune_epochs"}, **qrec,
              "pruned_zeros_kept_in_int8_per_layer": kept}
    if not all(kept.values()):
        raise RuntimeError(f"pruned weights came back non-zero in the int8 weights of "
                           f"{', '.join(k for k, v in kept.items() if not v)}")
    return Result(name, record)
