"""Helpers shared by the technique tests (imported, not fixtures)."""

from __future__ import annotations

from pathlib import Path


def sha256(path: Path) -> str:
    """The content digest variant records carry (pilotopt.artifacts.artifact_digest)."""
    from pilotopt.artifacts import artifact_digest

    return artifact_digest(Path(path))


def torch_checkpoint(path: Path, model: str = "pilotnet_student", seed: int = 0) -> Path:
    """A freshly initialised registry model saved in pilotopt's checkpoint format."""
    import torch

    from pilotopt.models import build_torch

    torch.save({"format": "pilotopt.torch/1", "model": model, "state_dict": build_torch(model, seed=seed).state_dict(),
                "meta": {}}, path)
    return Path(path)
