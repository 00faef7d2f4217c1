"""What the torch kinds share: reading a torch.save archive safely (weights_only) once per file."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pilotopt.artifacts.kind import zip_members
from pilotopt.frameworks import import_torch

STATE_KEYS = ("state_dict", "model_state_dict", "model", "net")  # where trainers nest the weights


def is_pickle_archive(path: Path) -> bool:
    """A torch.save zip (data.pkl), not a TorchScript or torch.export archive."""
    names = zip_members(path)
    return (any(n.endswith("/data.pkl") for n in names) and not any("/code/" in n for n in names)
            and not any(n.endswith(("/archive_format", "/models/model.json")) for n in names))


@lru_cache(maxsize=8)
def _load(path: str, mtime: float):
    torch = import_torch()
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - a pickled nn.Module, or a corrupt file
        return exc


def load_archive(path: Path):
    """The archive's object, or the exception weights-only loading raised."""
    path = Path(path)
    return _load(str(path.resolve()), path.stat().st_mtime)


def is_tensor_mapping(obj) -> bool:
    import torch

    return isinstance(obj, dict) and bool(obj) and all(isinstance(k, str) for k in obj) and \
        all(isinstance(v, torch.Tensor) for v in obj.values())


def state_dict_of(obj) -> dict | None:
    """A plain state dict, or one nested under a trainer's key (Lightning's state_dict, ...)."""
    if is_tensor_mapping(obj):
        return obj
    if isinstance(obj, dict):
        for key in STATE_KEYS:
            if is_tensor_mapping(obj.get(key)):
                return obj[key]
    return None
