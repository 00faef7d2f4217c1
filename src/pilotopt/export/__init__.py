"""Export a trained model to every deployment runtime at fp32: a thin name for the conversion
techniques (pilotopt.techniques), which are passes like any other (one runner, one context, one
check of every result against its input, one variant record).

    from pilotopt.export import export_baseline
    variants = export_baseline("runs/torch_pilotnet", "artifacts")        # every fp32 torch-side target
    variants = export_baseline("runs/tf_pilotnet/model.h5", "artifacts", targets=["tflite_fp32"])"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from pilotopt.errors import BadInputError

# The fp32 conversions, in the order their variants are listed.
EXPORT_TARGETS = ("torch", "torchscript", "torch_export", "onnx_fp32", "openvino_fp32", "tensorrt_fp32",
                  "keras", "tflite_fp32")


def resolve_baseline(model_path: Path | str):
    """The trained framework model at `model_path` (a PyTorch checkpoint or state dict, a Keras
    model, or a training output folder) as an Artifact."""
    from pilotopt.artifacts import open_artifact

    art = open_artifact(model_path)
    if art.framework not in ("torch", "tf") or not art.kind.trainable:
        raise BadInputError(f"'{art.path}' is not a trained baseline ({art.kind.description}); pass a PyTorch "
                            "checkpoint, a Keras .h5 / SavedModel folder, or a training output folder")
    return art


def default_targets(framework: str) -> list[str]:
    """The fp32 targets a baseline of `framework` exports to by default."""
    from pilotopt.techniques import techniques

    known = techniques()
    return [n for n in EXPORT_TARGETS if n in known and known[n].framework == framework]


def exporter_names() -> list[str]:
    return list(EXPORT_TARGETS)


def export_baseline(model_path: Path | str, out_dir: Path | str, targets: list[str] | None = None,
                    threads: int | None = 2, progress: Callable[[str], None] | None = None):
    """Export the baseline at `model_path` to each target under `out_dir` (each in its own process,
    checked against the baseline); returns one Variant per target (ok / failed / skipped), in order."""
    from pilotopt.techniques import optimize, techniques

    art = resolve_baseline(model_path)
    names = default_targets(art.framework) if targets is None else list(dict.fromkeys(targets))
    known = techniques()
    unknown = [n for n in names if n not in known]
    if unknown:
        raise BadInputError(f"unknown export target(s) {', '.join(unknown)}; choose from {', '.join(EXPORT_TARGETS)}")
    return optimize(art.path, names, None, out_dir, threads=threads, progress=progress)


__all__ = ["EXPORT_TARGETS", "default_targets", "export_baseline", "exporter_names", "resolve_baseline"]
