"""TorchScript (torch.jit.save of a trace or script), whatever its file name (.pt, .pth, .torchscript.pt)."""

from __future__ import annotations

from pathlib import Path

from pilotopt.artifacts.kind import Kind, register_kind, zip_members
from pilotopt.artifacts.tally import Tally, tally_torch_state


def detect(path: Path) -> bool:
    return any("/code/__torch__/" in n for n in zip_members(path))


def count(path: Path) -> dict | None:
    import torch

    return tally_torch_state(torch.jit.load(str(path), map_location="cpu").state_dict(), Tally()).result(
        "TorchScript state dict")


register_kind(Kind("torchscript", "torch", "torchscript", "TorchScript module", detect, count, None, order=5))
