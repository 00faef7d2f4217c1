"""`torch_prune_global`: global L1 unstructured pruning (torch.nn.utils.prune.global_unstructured):
the smallest-magnitude 30 % of ALL conv + dense weights together are masked (layers end up with
different sparsities), a short fine-tune keeps the masks, `prune.remove` bakes the zeros in; normal
checkpoint (`torch` runtime). The record holds the sparsity per layer and overall."""

from __future__ import annotations

from dataclasses import dataclass

from pilotopt.techniques._core import TORCH, Result, TechniqueContext, register_technique
from pilotopt.techniques._settings import setting
from pilotopt.techniques._torch_fit import FineTuneSettings
from pilotopt.techniques.torch_prune_local import fine_tune_and_remove, prunable


@dataclass(frozen=True)
class GlobalPruneSettings(FineTuneSettings):
    amount: float = setting(0.3, "share of all conv + dense weights set to zero", ge=0, lt=1)


@register_technique("torch_prune_global", framework=TORCH, runtime="torch", order=150, needs_data=True,
                    settings=GlobalPruneSettings,
                    description="global L1 unstructured pruning (30 % of all weights), fine-tune, checkpoint")
def apply(ctx: TechniqueContext) -> Result:
    from torch.nn.utils import prune

    s: GlobalPruneSettings = ctx.settings
    net = ctx.torch_model()  # a fresh copy; the baseline file is never touched
    prune.global_unstructured([(m, "weight") for _, m in prunable(net)], pruning_method=prune.L1Unstructured,
                              amount=s.amount)
    record = {"pruning": "global_unstructured L1", "amount": s.amount, **fine_tune_and_remove(ctx, net, s)}
    return Result(ctx.save_torch_checkpoint(net, meta={"technique": "torch_prune_global"}), record)
