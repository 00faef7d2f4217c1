"""Export a trained baseline to every deployment runtime, one variant folder per target.

    from pilotopt.export import export_baseline, exporter_names
    variants = export_baseline("runs/torch_pilotnet", "artifacts")        # every fp32 torch-side target
    variants = export_baseline("runs/tf_pilotnet/model.h5", "artifacts", targets=["tflite_fp32"])

Each target is one small module here (`to_*.py`) registering a function with
`@register_exporter(name, framework=..., runtime=..., artifact=...)`. Every target writes
ARTIFACTS/<name>/ atomically through `pilotopt.variants` with status ok / failed / skipped and the
reason; one target failing never stops the others. Each result is loaded back with its runtime
and compared with the baseline on a few frames before it counts as ok.

We do not convert across frameworks: a target that needs the other framework's baseline
(tflite_fp32 from a torch checkpoint, onnx_fp32 from a Keras model) is skipped with that reason.
Exporting both baselines into one folder is fine; such a skip never replaces an ok variant
already there."""

from __future__ import annotations

import importlib
import pkgutil
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

from pilotopt.errors import BadInputError, RuntimeUnavailable
from pilotopt.export.base import (FRAMEWORK_LABEL, Baseline, ExportContext, Exporter, quiet_conversion,
                                  resolve_baseline)
from pilotopt.variants import VARIANT_FILE, Variant, read_variant, write_variant

_EXPORTERS: dict[str, Exporter] = {}


def register_exporter(name: str, *, framework: str, runtime: str, artifact: str, precision: str = "fp32",
                      default: bool = True, order: int = 100, check: bool = True, tolerance: float | None = None):
    def deco(fn: Callable):
        kw = {} if tolerance is None else {"tolerance": tolerance}
        _EXPORTERS[name] = Exporter(name=name, framework=framework, runtime=runtime, artifact=artifact, fn=fn,
                                    precision=precision, default=default, order=order, check=check, **kw)
        return fn
    return deco


def _load_all() -> None:
    for mod in pkgutil.iter_modules(__path__):
        if mod.name.startswith("to_"):
            importlib.import_module(f"{__name__}.{mod.name}")


def exporters() -> dict[str, Exporter]:
    _load_all()
    return dict(sorted(_EXPORTERS.items(), key=lambda kv: (kv[1].order, kv[0])))


def exporter_names() -> list[str]:
    return list(exporters())


def default_targets(framework: str) -> list[str]:
    """The fp32 targets a baseline of `framework` exports to by default."""
    return [n for n, e in exporters().items() if e.default and e.framework == framework]


def export_baseline(model_path: Path | str, out_dir: Path | str, targets: list[str] | None = None,
                    threads: int | None = 2, progress: Callable[[str], None] | None = None) -> list[Variant]:
    """Export the baseline at `model_path` to each target under `out_dir`; returns one Variant
    per target (status ok / failed / skipped), in target order. Raises only for bad arguments."""
    from pilotopt.atomic import ensure_writable_dir

    baseline = resolve_baseline(model_path)
    known = exporters()
    names = default_targets(baseline.framework) if targets is None else list(dict.fromkeys(targets))
    unknown = [n for n in names if n not in known]
    if unknown:
        raise BadInputError(f"unknown export target(s) {', '.join(unknown)}; choose from {', '.join(known)}")
    out = ensure_writable_dir(out_dir)
    _import_framework(baseline.framework, threads)
    results = []
    with tempfile.TemporaryDirectory(prefix="pilotopt-export-") as scratch:
        ctx = ExportContext(baseline, threads, Path(scratch))
        for name in names:
            if progress:
                progress(f"export {name}")
            results.append(_export_one(ctx, known[name], out))
    return results


def _import_framework(framework: str, threads: int | None) -> None:
    """Fix the framework's thread pool before anything uses it."""
    from pilotopt.frameworks import import_tf, import_torch

    (import_torch if framework == "torch" else import_tf)(threads)


def _new_variant(ctx: ExportContext, exp: Exporter) -> Variant:
    base = ctx.baseline.variant_name
    return Variant(name=exp.name, runtime=exp.runtime, artifact=None, framework=exp.framework, technique="",
                   baseline=None if exp.name == base else base,
                   record={"precision": exp.precision, "source": str(ctx.baseline.path), "threads": ctx.threads})


def _export_one(ctx: ExportContext, exp: Exporter, out: Path) -> Variant:
    from pilotopt.atomic import atomic_path
    from pilotopt.runtimes._util import short_error

    variant = _new_variant(ctx, exp)
    folder = out / exp.name
    if exp.framework != ctx.framework:
        variant.status = "skipped"
        variant.reason = (f"needs a {FRAMEWORK_LABEL[exp.framework]} baseline; '{ctx.baseline.path}' is "
                          f"{FRAMEWORK_LABEL[ctx.framework]} and pilotopt does not convert across frameworks")
        if not _holds_ok_variant(folder):  # never replace the other framework's ok export with this skip
            _write_status_only(folder, variant)
        return variant
    t0 = time.perf_counter()
    try:
        with atomic_path(folder) as tmp:
            tmp.mkdir()
            with quiet_conversion():
                details = dict(exp.fn(ctx, tmp / exp.artifact) or {})
            artifact = details.pop("artifact", exp.artifact)  # an exporter may name its own artifact
            dest = tmp / artifact
            if not dest.exists():
                raise RuntimeError(f"exporter wrote no {artifact}")
            variant.record.update(details)
            variant.record["export_seconds"] = round(time.perf_counter() - t0, 3)
            variant.record["size_bytes"] = _size(dest)
            if exp.check:
                variant.record.update(_check(ctx, exp, dest))
            variant.artifact = artifact
            write_variant(tmp, variant)
        return variant
    except RuntimeUnavailable as exc:
        variant.status, variant.reason = "skipped", str(exc)
    except Exception as exc:  # noqa: BLE001 - one target failing is recorded, never raised
        variant.status, variant.reason = "failed", short_error(exc, limit=300)
    variant.artifact = None
    variant.record["export_seconds"] = round(time.perf_counter() - t0, 3)
    _write_status_only(folder, variant)
    return variant


class ExportCheckFailed(RuntimeError):
    pass


def _check(ctx: ExportContext, exp: Exporter, dest: Path) -> dict:
    """Load the export with its runtime and compare its outputs with the baseline's."""
    from pilotopt.runtimes import load_predictor

    predictor = load_predictor(dest, runtime=exp.runtime, threads=ctx.threads)
    try:
        got = predictor.predict(ctx.check_frames)
    finally:
        del predictor
    diff = float(np.max(np.abs(got - ctx.reference)))
    if not np.isfinite(diff) or diff > exp.tolerance:
        raise ExportCheckFailed(f"outputs differ from the {ctx.baseline.variant_name} baseline by {diff:.3g} "
                                f"(> {exp.tolerance:g}) on {len(got)} check frames")
    return {"check_max_abs_diff": diff, "check_frames": int(len(got))}


def _holds_ok_variant(folder: Path) -> bool:
    if not (folder / VARIANT_FILE).is_file():
        return False
    try:
        return read_variant(folder).status == "ok"
    except BadInputError:
        return False


def _write_status_only(folder: Path, variant: Variant) -> None:
    """A variant folder with only variant.json (failed / skipped)."""
    from pilotopt.atomic import atomic_path

    with atomic_path(folder) as tmp:
        tmp.mkdir()
        write_variant(tmp, variant)


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    total = path.stat().st_size
    if path.suffix == ".xml" and path.with_suffix(".bin").is_file():
        total += path.with_suffix(".bin").stat().st_size
    return total


__all__ = ["Baseline", "ExportContext", "Exporter", "default_targets", "export_baseline", "exporter_names",
           "exporters", "register_exporter", "resolve_baseline"]
