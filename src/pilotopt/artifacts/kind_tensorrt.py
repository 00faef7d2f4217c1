"""TensorRT serialized engine (.engine / .plan): opaque without TensorRT itself, so known by name."""

from __future__ import annotations

from pathlib import Path

from pilotopt.artifacts.kind import Kind, register_kind


def detect(path: Path) -> bool:
    return path.is_file() and path.suffix in (".engine", ".plan")


register_kind(Kind("tensorrt", "portable", "tensorrt", "TensorRT engine (NVIDIA GPU)", detect, None, None, order=90))
