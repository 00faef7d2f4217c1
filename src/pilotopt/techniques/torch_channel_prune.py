"""`torch_channel_prune`: structured channel pruning with torch-pruning, of pilotopt's frame conv nets
and of feed-forward models of other toolkits (DLS's PilotNet: its last Linear is the head that
keeps its 2 outputs; recurrent models are skipped with the reason). Whole conv filters and hidden
dense units are removed (their dependents - the next layer's inputs, dense1's columns behind the
flatten - follow via torch-pruning's DependencyGraph), so the network really has fewer channels,
parameters and MACs, unlike magnitude pruning's zeros. Then a fine-tune on the TRAINING split.

The artifact is a TorchScript trace (`model.torchscript.pt`, self-describing: the pruned widths are
not a registered architecture) run by the `torchscript` runtime, the same runtime as the baseline's
own model.torchscript.pt, so the two compare like for like. `widths.json` beside it names the base
architecture and every layer's width; `load_eager(path)` rebuilds the eager module from it and the
TorchScript file's own weights, so no second copy of the weights is stored."""

from __future__ import annotations

import copy
import dataclasses
import importlib.util
import json
import warnings
from dataclasses import dataclass
from pathlib import Path

from pilotopt.errors import BadInputError, RuntimeUnavailable, one_line
from pilotopt.models import get_model_spec
from pilotopt.models._convnet import FrameConvNetSpec
from pilotopt.techniques import _torch_fit
from pilotopt.techniques._core import TORCH, Result, TechniqueContext, register_technique
from pilotopt.techniques._settings import setting

ARTIFACT = "model.torchscript.pt"
WIDTHS = "widths.json"
IMPORTANCE = {"l1": 1, "l2": 2}  # the norm of each channel's weights in its dependency group


@dataclass(frozen=True)
class ChannelPruneSettings(_torch_fit.FineTuneSettings):
    pruning_ratio: float = setting(0.5, "share of channels removed from every conv and hidden dense layer",
                                   gt=0, lt=1)
    iterative_steps: int = setting(1, "prune + fine-tune rounds that reach the ratio", ge=1)
    importance: str = setting("l2", "channel ranking: l1 or l2 norm of the group's weights",
                              choices=tuple(IMPORTANCE))
    global_pruning: bool = setting(False, "rank channels across layers (uneven widths) instead of per layer")
    round_to: int = setting(0, "keep widths multiples of this (0: no rounding)", ge=0)
    epochs: int = 2  # fine-tuning epochs after EACH pruning step
    learning_rate: float = 3e-4  # higher than the 1e-4 default: half the channels are gone


def _available() -> tuple[bool, str]:
    if importlib.util.find_spec("torch_pruning") is None:
        return False, "torch-pruning is not installed (pip install torch-pruning)"
    return True, ""


def _last_linear(net):
    """The output layer of a model of another toolkit: its last Linear (the (v, w) head)."""
    import torch

    linears = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
    if not linears:
        raise BadInputError("torch_channel_prune needs a model whose last layer is a Linear (v, w) head")
    return linears[-1]


def _recurrent(net) -> list:
    """Recurrent blocks (a ConvLSTM's gates split one convolution four ways)."""
    return [m for m in net.modules() if "lstm" in type(m).__name__.lower()]


def layer_widths(net) -> dict[str, int]:
    """Output channels / units of every conv and dense layer, by layer name (conv1.., dense1.., output)."""
    import torch

    return {name.rsplit(".", 1)[-1]: int(m.out_channels if isinstance(m, torch.nn.Conv2d) else m.out_features)
            for name, m in net.named_modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))}


def count_macs(net, sample_shape) -> int:
    """Multiply-accumulates of one sample, counted the way pilotopt.models.macs does (conv and dense
    weights only; no biases or activations) but on the real module, so it also counts pruned widths."""
    import torch

    total = 0

    def hook(module, inputs, output):
        nonlocal total
        if isinstance(module, torch.nn.Conv2d):
            kh, kw = module.kernel_size
            total += output[0].numel() * (module.in_channels // module.groups) * kh * kw
        else:
            total += module.in_features * module.out_features

    handles = [m.register_forward_hook(hook) for m in net.modules()
               if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    try:
        with torch.no_grad():
            net(torch.zeros((1, *sample_shape)))
    finally:
        for h in handles:
            h.remove()
    return int(total)


def _probe_mse(ctx: TechniqueContext, n: int = 256):
    """MSE on a fixed, seeded set of training frames: what pruning costs and what fine-tuning wins back."""
    import numpy as np

    split = ctx.train
    idx = np.sort(np.random.default_rng([ctx.seed, 1]).permutation(len(split))[: min(n, len(split))])
    x, y = split.batch(idx)
    xb, yb = ctx.torch.from_numpy(x.astype(np.float32)), y.astype(np.float32)

    def mse(net) -> float:
        with ctx.torch.no_grad():
            return float(np.mean((net(xb).numpy() - yb) ** 2))

    return mse


def build_pruned(model: str, widths: dict[str, int], seed: int = 0):
    """An eager module of registry architecture `model` with the given conv / hidden dense widths."""
    base = get_model_spec(model)
    if not isinstance(base, FrameConvNetSpec):
        raise BadInputError(f"model '{model}' is not a frame conv net; cannot rebuild pruned widths")
    spec = copy.copy(base)  # an unregistered copy; only its widths change
    try:
        spec.convs = tuple(dataclasses.replace(c, filters=int(widths[f"conv{i}"])) for i, c in enumerate(base.convs, 1))
        spec.dense = tuple(int(widths[f"dense{i}"]) for i in range(1, len(base.dense) + 1))
    except KeyError as exc:
        raise BadInputError(f"pruned widths lack layer {exc.args[0]} of model '{model}'") from None
    return spec.build_torch(seed)


def load_eager(path: Path | str):
    """The pruned eager module from a model.torchscript.pt with widths.json beside it (for further
    training or other exporters; the runtimes run the TorchScript file itself)."""
    import torch

    path = Path(path)
    meta_file = path.parent / WIDTHS
    try:
        meta = json.loads(meta_file.read_text())
        net = build_pruned(meta["model"], meta["widths"])
        net.load_state_dict(torch.jit.load(str(path), map_location="cpu").state_dict())
    except BadInputError:
        raise
    except Exception as exc:
        raise BadInputError(f"cannot rebuild the pruned model from '{path}' and '{meta_file}': "
                            f"{one_line(exc, limit=200)}") from None
    return net.eval()


@register_technique("torch_channel_prune", framework=TORCH, runtime="torchscript", order=170, needs_data=True,
                    settings=ChannelPruneSettings, available=_available,
                    description="torch-pruning structured channel pruning (50 % of conv/dense channels), "
                                "fine-tune, TorchScript")
def apply(ctx: TechniqueContext) -> Result:
    s: ChannelPruneSettings = ctx.settings
    torch = ctx.torch
    import torch_pruning as tp

    # torch: imported on first use, not with this module
    from pilotopt.models._torch_layers import FrameConvNet

    torch.manual_seed(ctx.seed)
    name = ctx.torch_model_name
    net = ctx.torch_model()  # a fresh copy; the baseline file is never touched
    if not isinstance(net, FrameConvNet) and _recurrent(net):
        raise RuntimeUnavailable(f"'{name}' has recurrent (ConvLSTM) blocks, whose gate convolutions torch-pruning "
                                 "cannot split; channel pruning covers feed-forward conv nets")
    output = net.head.output if isinstance(net, FrameConvNet) else _last_linear(net)
    sample_shape = tuple(ctx.sample_shape)
    example = torch.zeros((1, *sample_shape))
    probe = _probe_mse(ctx)
    before = {"params": int(sum(p.numel() for p in net.parameters())), "macs": count_macs(net, sample_shape),
              "widths": layer_widths(net), "probe_mse": probe(net)}

    pruner = tp.pruner.BasePruner(
        net, example, importance=tp.importance.GroupMagnitudeImportance(p=IMPORTANCE[s.importance]),
        pruning_ratio=s.pruning_ratio, iterative_steps=s.iterative_steps, global_pruning=s.global_pruning,
        round_to=s.round_to or None, ignored_layers=[output])  # never change the 2 outputs
    rounds = []
    for step in range(s.iterative_steps):
        net.eval()
        pruner.step()
        pruned_mse = probe(net)
        fit = _torch_fit.fine_tune(ctx, net, s)
        rounds.append({"step": step + 1, "params": int(sum(p.numel() for p in net.parameters())),
                       "macs": count_macs(net, sample_shape), "probe_mse_pruned": pruned_mse,
                       "probe_mse_fine_tuned": probe(net), **fit})
    net.eval()
    after = {"params": int(sum(p.numel() for p in net.parameters())), "macs": count_macs(net, sample_shape),
             "widths": layer_widths(net)}
    out_name = next(n for n, m in net.named_modules() if m is output).rsplit(".", 1)[-1]
    if after["widths"][out_name] != before["widths"][out_name]:  # would silently change what it predicts
        raise RuntimeError("pruning changed the output layer")

    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript deprecation notices
        traced = torch.jit.trace(net, torch.from_numpy(ctx.train_frames(2)))
    traced.save(str(ctx.out / ARTIFACT))
    if isinstance(net, FrameConvNet):  # a registered architecture: rebuildable from its widths
        (ctx.out / WIDTHS).write_text(json.dumps({"format": "pilotopt.pruned_widths/1", "model": name,
                                                  "widths": after["widths"]}, indent=2) + "\n")
    return Result(ARTIFACT, {
        "model": name, "method": "torch-pruning BasePruner + GroupMagnitudeImportance, torch.jit.trace",
        "params_before": before["params"], "params_after": after["params"],
        "macs_before": before["macs"], "macs_after": after["macs"],
        "params_ratio": after["params"] / before["params"], "macs_ratio": after["macs"] / before["macs"],
        "channels_before": before["widths"], "channels_after": after["widths"], "rounds": rounds,
        "probe_mse_baseline": before["probe_mse"], "probe_mse_final": rounds[-1]["probe_mse_fine_tuned"],
        "probe_frames": "256 seeded training frames",
        "final_loss": rounds[-1]["final_loss"], "widths_file": WIDTHS if isinstance(net, FrameConvNet) else None,
        "torch_pruning": tp.__version__,
    })
