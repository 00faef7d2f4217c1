"""A bare PyTorch state dict (`torch.save(model.state_dict(), "x.ckpt")`, as DeepLearningStudio and
Behavior Metrics keep their models), or one nested under a trainer's key; the architecture comes
from `--arch` (a registered model or `package.module:Class`)."""

from __future__ import annotations

from pathlib import Path

from pilotopt.artifacts.kind import Kind, register_kind
from pilotopt.artifacts.tally import Tally, tally_torch_state
from pilotopt.artifacts.torch_files import is_pickle_archive, load_archive, state_dict_of


def detect(path: Path) -> bool:
    if not is_pickle_archive(path):
        return False
    obj = load_archive(path)
    return not (isinstance(obj, dict) and isinstance(obj.get("model"), str)) and state_dict_of(obj) is not None


def count(path: Path) -> dict | None:
    return tally_torch_state(state_dict_of(load_archive(path)), Tally()).result("torch state dict")


register_kind(Kind("torch_state_dict", "torch", "torch", "PyTorch state dict (weights only; needs --arch)",
                   detect, count, None, needs_arch=True, trainable=True, order=11))
