"""Shared by the PyTorch techniques that fine-tune (pruning, QAT, channel pruning, distillation): a
short, seeded, deterministic fine-tune on the TRAINING split, and weight statistics."""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from pilotopt.techniques._batches import batch_indices, training_batch  # noqa: F401 - used by torch_distill too
from pilotopt.techniques._settings import FineTuneSettings  # noqa: F401 - re-exported for the torch techniques


def batches(ctx, settings: FineTuneSettings):
    """(epoch, x, y) float32 batches of the training split in the model's space, seeded per epoch,
    photometrically augmented when settings.augment names an augmentation."""
    for epoch, idx in batch_indices(ctx, settings):
        x, y = training_batch(ctx, settings.augment, epoch, idx)
        yield epoch, x.astype(np.float32), y.astype(np.float32)


def steps(ctx, settings: FineTuneSettings) -> int:
    split = ctx.train
    n = len(split) if settings.max_train_frames <= 0 else min(len(split), settings.max_train_frames)
    return max(1, math.ceil(n / settings.batch_size)) * settings.epochs


def fine_tune(ctx, net, settings: FineTuneSettings, *, loss_fn: Callable | None = None,
              after_step: Callable[[], None] | None = None, params=None, train_mode: bool = True) -> dict:
    """Adam on MSE (or `loss_fn(net, x, y) -> loss`) over the training split. `after_step` runs after
    each optimizer step (e.g. to re-apply a sparsity mask). Deterministic under ctx.seed."""
    torch = ctx.torch
    torch.manual_seed(ctx.seed)
    opt = torch.optim.Adam(params if params is not None else [p for p in net.parameters() if p.requires_grad],
                           lr=settings.learning_rate)
    mse = torch.nn.MSELoss()
    if train_mode:
        net.train()
    losses, n_steps = [], 0
    for _, x, y in batches(ctx, settings):
        xb, yb = torch.from_numpy(x), torch.from_numpy(y)
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(net, xb, yb) if loss_fn is not None else mse(net(xb), yb)
        loss.backward()
        opt.step()
        if after_step is not None:
            with torch.no_grad():
                after_step()
        losses.append(float(loss.detach()))
        n_steps += 1
    if hasattr(net, "eval"):
        net.eval()
    return {"fine_tune_steps": n_steps, "fine_tune_epochs": settings.epochs,
            "final_loss": float(np.mean(losses[-max(1, min(10, len(losses))):])) if losses else None}


def weight_stats(net) -> dict:
    """Per weight tensor of conv / linear layers: sparsity (share of exact zeros) and unique values."""
    import torch

    per_layer, zeros, total = {}, 0, 0
    for name, module in net.named_modules():
        if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
            w = module.weight.detach()
            z = int((w == 0).sum())
            per_layer[name] = {"sparsity": z / w.numel(), "params": int(w.numel())}
            zeros += z
            total += int(w.numel())
    params = int(sum(p.numel() for p in net.parameters()))
    nonzero = int(sum(int((p != 0).sum()) for p in net.parameters()))
    return {"sparsity_per_layer": {k: v["sparsity"] for k, v in per_layer.items()},
            "sparsity_overall": zeros / total if total else 0.0, "params": params, "nonzero_params": nonzero}
