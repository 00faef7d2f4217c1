"""`torch_prune_local`: per-layer L1 unstructured pruning (torch.nn.utils.prune.l1_unstructured):
the smallest-magnitude 30 % of every conv kernel and 50 % of every dense kernel are masked, a short
fine-tune on the TRAINING split keeps the masks (pruning hooks), then `prune.remove` bakes the zeros
in. The artifact is a normal checkpoint (`torch` runtime; dense storage, so the file is not smaller).
The record holds the sparsity reached per layer."""

from __future__ import annotations

from dataclasses import dataclass

from pilotopt.techniques._core import TORCH, Result, TechniqueContext, register_technique
from pilotopt.techniques._settings import setting
from pilotopt.techniques._torch_fit import FineTuneSettings, fine_tune, weight_stats


@dataclass(frozen=True)
class LocalPruneSettings(FineTuneSettings):
    conv_amount: float = setting(0.3, "share of each conv kernel's weights set to zero", ge=0, lt=1)
    dense_amount: float = setting(0.5, "share of each dense kernel's weights set to zero", ge=0, lt=1)


def prunable(net) -> list[tuple[str, object]]:
    """(name, module) of every Conv2d / Linear layer, in registration order."""
    import torch

    return [(n, m) for n, m in net.named_modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]


def prune_local(net, conv_amount: float, dense_amount: float) -> dict[str, float]:
    """Mask each layer's smallest-|w| share in place; returns the amount asked per layer."""
    import torch
    from torch.nn.utils import prune

    amounts = {}
    for name, module in prunable(net):
        amounts[name] = conv_amount if isinstance(module, torch.nn.Conv2d) else dense_amount
        prune.l1_unstructured(module, "weight", amount=amounts[name])
    return amounts


def fine_tune_and_remove(ctx, net, settings: FineTuneSettings) -> dict:
    """Fine-tune with the pruning masks in place (the hooks multiply weight_orig by the mask on
    every forward), then make the zeros permanent; returns fine-tune details + weight statistics."""
    from torch.nn.utils import prune

    fit = fine_tune(ctx, net, settings)
    for _, module in prunable(net):
        if prune.is_pruned(module):
            prune.remove(module, "weight")
    return {**fit, **weight_stats(net)}


def zero_masks(net) -> dict[str, object]:
    """Parameter name -> boolean mask of the weights that are non-zero now (after pruning)."""
    return {f"{name}.weight": (module.weight.detach() != 0) for name, module in prunable(net)}


@register_technique("torch_prune_local", framework=TORCH, runtime="torch", order=140, needs_data=True,
                    settings=LocalPruneSettings,
                    description="per-layer L1 unstructured pruning (conv 30 %, dense 50 %), fine-tune, checkpoint")
def apply(ctx: TechniqueContext) -> Result:
    s: LocalPruneSettings = ctx.settings
    net = ctx.torch_model()  # a fresh copy; the baseline file is never touched
    amounts = prune_local(net, s.conv_amount, s.dense_amount)
    record = {"pruning": "l1_unstructured (per layer)", "amount_per_layer": amounts,
              **fine_tune_and_remove(ctx, net, s)}
    return Result(ctx.save_torch_checkpoint(net, meta={"technique": "torch_prune_local"}), record)
