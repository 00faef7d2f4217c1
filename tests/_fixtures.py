"""Helpers shared by the technique tests (imported, not fixtures)."""

from __future__ import annotations

import hashlib
from pathlib import Path


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def torch_checkpoint(path: Path, model: str = "pilotnet_student", seed: int = 0) -> Path:
    """A freshly initialised registry model saved in pilotopt's checkpoint format."""
    import torch

    from pilotopt.models import build_torch

    torch.save({"format": "pilotopt.torch/1", "model": model, "state_dict": build_torch(model, seed=seed).state_dict(),
                "meta": {}}, path)
    return Path(path)
