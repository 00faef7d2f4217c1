"""pilotopt's own PyTorch checkpoint: {"model": registered architecture name, "state_dict", "meta"}."""

from __future__ import annotations

from pathlib import Path

from pilotopt.artifacts.kind import Kind, register_kind
from pilotopt.artifacts.tally import Tally, tally_torch_state
from pilotopt.artifacts.torch_files import is_pickle_archive, is_tensor_mapping, load_archive
from pilotopt.models import get_model_spec


def detect(path: Path) -> bool:
    if not is_pickle_archive(path):
        return False
    obj = load_archive(path)
    return isinstance(obj, dict) and isinstance(obj.get("model"), str) and is_tensor_mapping(obj.get("state_dict"))


def count(path: Path) -> dict | None:
    return tally_torch_state(load_archive(path)["state_dict"], Tally()).result("torch state dict")


def declared_input(path: Path) -> tuple | None:
    name = load_archive(path)["model"]
    try:
        return tuple(get_model_spec(name).sample_shape)
    except Exception:  # noqa: BLE001 - an architecture this install does not know
        return None


register_kind(Kind("torch_checkpoint", "torch", "torch", "pilotopt PyTorch checkpoint (architecture name + state dict)",
                   detect, count, declared_input, trainable=True, order=10))
