"""`optimize()`: run techniques on a baseline, each in its own child process, one variant folder each.

A converter that crashes the interpreter (SIGSEGV, abort) takes only its child with it: the parent
records that technique as failed with a one-line reason and goes on with the next one."""

from __future__ import annotations

import importlib
import json
import os
import time
import traceback
from pathlib import Path
from typing import Callable, Sequence

from pilotopt.errors import BadInputError, RuntimeUnavailable, one_line
from pilotopt.techniques._core import (TechniqueContext, Technique, _TECHNIQUES, settings_dict, techniques,
                                       tree_size)
from pilotopt.variants import VARIANT_FILE, Variant, read_variant, write_variant

CHECK_FRAMES = 8  # frames each result is compared with the baseline on


# -- inputs ----------------------------------------------------------------------------------------
def _select(names: Sequence[str] | str, known: dict[str, Technique]) -> list[str]:
    if isinstance(names, str):
        names = list(known) if names.strip() == "all" else [n.strip() for n in names.split(",") if n.strip()]
    names = list(dict.fromkeys(names))
    if "all" in names:
        names = list(known)
    if not names:
        raise BadInputError(f"no technique given; choose from {', '.join(known)} (or all)")
    unknown = [n for n in names if n not in known]
    if unknown:
        raise BadInputError(f"unknown technique(s) {', '.join(unknown)}; choose from {', '.join(known)}")
    return names


def read_settings_file(path: Path | str) -> dict[str, dict]:
    """A YAML (or JSON) file `{technique: {key: value}}`, optionally under a top-level `settings:`."""
    from pilotopt.yamlfile import read_yaml

    path = Path(path)
    doc = read_yaml(path, "config file")
    if doc is None:
        return {}
    if isinstance(doc, dict) and set(doc) == {"settings"}:
        doc = doc["settings"]
    if not isinstance(doc, dict) or not all(isinstance(v, dict) or v is None for v in doc.values()):
        raise BadInputError(f"config file '{path}' must map technique names to settings, e.g. "
                            "'tflite_int8: {{representative_frames: 200}}'")
    return {str(k): dict(v or {}) for k, v in doc.items()}


def merge_settings(*layers: dict | None) -> dict[str, dict]:
    merged: dict[str, dict] = {}
    for layer in layers:
        for name, values in (layer or {}).items():
            if values is not None and not isinstance(values, dict):
                raise BadInputError(f"settings for technique '{name}' must be a mapping of key -> value")
            merged.setdefault(name, {}).update(values or {})
    return merged


def baseline_hash(path: Path) -> str:
    """The input artifact's content digest (pilotopt.artifacts.artifact_digest)."""
    from pilotopt.artifacts import artifact_digest

    return artifact_digest(path)


def check_input(art, threads) -> None:
    """Load the input model and run it once through its contract, before any work: a model that
    cannot be loaded, or does not take what its contract feeds, stops with one line."""
    import numpy as np

    from pilotopt.artifacts import load_artifact_predictor
    from pilotopt.frameworks import quiet_conversion

    t = int(art.metadata.get("sequence_length") or 1)
    g = art.contract.geometry
    images = np.zeros((1, t, *g.image_shape) if t > 1 else (1, *g.image_shape), np.uint8)
    with quiet_conversion():
        y = load_artifact_predictor(art, threads=threads).predict(images)
    if np.asarray(y).shape != (1, 2):
        raise BadInputError(f"model '{art.path}' returns shape {tuple(np.asarray(y).shape)} for one frame; "
                            "pilotopt needs 2 outputs (v, w)")


# -- the parent ------------------------------------------------------------------------------------
def optimize(model_path: Path | str, techniques_: Sequence[str] | str, data_roots: Sequence[Path | str] | None,
             out_dir: Path | str, settings: dict[str, dict] | None = None, config_file: Path | str | None = None,
             seed: int = 0, threads: int | None = 2, cache_dir: Path | str | None = None,
             progress: Callable[[str], None] | None = None, test_circuits: Sequence[str] | str | None = None,
             force: bool = False, timeout: float | None = None, arch: str | None = None,
             arch_args: dict | None = None, contract=None) -> list[Variant]:
    """Apply each technique to the baseline at `model_path`; one variant folder per technique under
    `out_dir` (named after the technique), written atomically. Returns one Variant per technique
    (ok / failed / skipped), in the order given. Raises BadInputError only for bad arguments, before
    any work. A variant already done with the same settings, seed and baseline is kept (not redone)
    unless `force`. `timeout`: seconds one technique may take before it is killed and recorded as
    failed (None: no limit). `arch` / `arch_args`: the architecture of a state dict; `contract`: the
    input contract (a preset name, YAML file or mapping; default pilotopt's own, adapted to the input
    the model declares)."""
    from pilotopt.artifacts import open_artifact
    from pilotopt.atomic import ensure_writable_dir

    known = techniques()
    names = _select(techniques_, known)
    layers = merge_settings(read_settings_file(config_file) if config_file else None, settings)
    unknown = [n for n in layers if n not in known]
    if unknown:
        raise BadInputError(f"settings given for unknown technique(s) {', '.join(unknown)}; "
                            f"choose from {', '.join(known)}")
    chosen = {n: known[n].make_settings(layers.get(n)) for n in names}  # validates every key first
    baseline = open_artifact(model_path, arch=arch, arch_args=arch_args, contract=contract)
    if progress:
        for note in baseline.contract.notes:
            progress(f"input contract: {note}")
    check_input(baseline, threads)
    data_cfg = None
    if any(known[n].needs_data and known[n].takes(baseline.kind.name) for n in names):
        data_cfg = _data_config(data_roots, test_circuits, cache_dir, seed, names, known, baseline.contract.geometry)
    out = ensure_writable_dir(out_dir)
    digest = baseline_hash(baseline.path)
    if data_cfg is not None:  # build the preprocessed-data cache once, here, not in racing children
        from pilotopt.data import load_splits

        if progress:
            progress("preparing the training split")
        if len(load_splits(data_cfg).train) == 0:
            raise BadInputError("the training split is empty; check --data and the test circuits")
    results = []
    for i, name in enumerate(names, 1):
        tech = known[name]
        if progress:
            progress(f"[{i}/{len(names)}] {name}: {tech.description}")
        variant = _run_one(tech, chosen[name], baseline, digest, out, seed, threads, data_cfg, force, timeout)
        if progress:
            took = variant.record.get("duration_s")
            extra = f" ({took:.1f} s)" if isinstance(took, (int, float)) and variant.status == "ok" else ""
            note = variant.reason if variant.status != "ok" else ("already done" if variant.record.get("reused") else "")
            progress(f"[{i}/{len(names)}] {name}: {variant.status}{extra}{': ' + note if note else ''}")
        results.append(variant)
    return results


def _data_config(data_roots, test_circuits, cache_dir, seed, names, known, geometry=None):
    from pilotopt.data import DataConfig

    roots = [data_roots] if isinstance(data_roots, (str, Path)) else list(data_roots or [])
    if not roots:
        need = [n for n in names if known[n].needs_data]
        raise BadInputError(f"technique(s) {', '.join(need)} need training data; pass --data with dataset folder(s)")
    kw = {"roots": roots, "cache_dir": cache_dir, "seed": seed}
    if geometry is not None:
        kw["geometry"] = geometry
    if test_circuits is not None:
        kw["test_circuits"] = test_circuits
    return DataConfig(**kw)


def baseline_variant_name(baseline) -> str:
    """The variant every other one is cross-checked against: the input model kept as it is."""
    from pilotopt.techniques._core import BASELINE_VARIANT

    return BASELINE_VARIANT.get(baseline.kind.name) or BASELINE_VARIANT[baseline.framework]


def _new_variant(tech: Technique, baseline, settings, digest: str, seed: int, threads) -> Variant:
    base = baseline_variant_name(baseline)
    framework = baseline.framework if baseline.framework in ("tf", "torch") else tech.framework
    return Variant(name=tech.name, runtime=tech.runtime, artifact=None, framework=framework,
                   technique=tech.name, baseline=None if tech.name == base else base,
                   record={"settings": settings_dict(settings), "seed": seed, "threads": threads,
                           "source": str(baseline.path), "baseline_sha256": digest,
                           "input_kind": baseline.kind.name},
                   contract=baseline.contract.to_dict())


def _done_before(folder: Path, variant: Variant) -> Variant | None:
    if not (folder / VARIANT_FILE).is_file():
        return None
    try:
        old = read_variant(folder)
    except BadInputError:
        return None
    keys = ("settings", "seed", "baseline_sha256")
    if (old.status == "ok" and old.artifact and (folder / old.artifact).exists()
            and all(old.record.get(k) == variant.record.get(k) for k in keys)
            and _same_contract(old.contract, variant.contract)):
        old.record["reused"] = True
        return old
    return None


def _same_contract(a: dict | None, b: dict | None) -> bool:
    from pilotopt.contracts import load_contract

    return load_contract(a).digest == load_contract(b).digest


def _run_one(tech: Technique, settings, baseline, digest, out: Path, seed, threads, data_cfg, force,
             timeout: float | None = None) -> Variant:
    from pilotopt.atomic import atomic_path

    variant = _new_variant(tech, baseline, settings, digest, seed, threads)
    folder = out / tech.name
    if not force:
        old = _done_before(folder, variant)
        if old is not None:
            return old
    if not tech.takes(baseline.kind.name):
        from pilotopt.artifacts import get_kind

        wants = ", ".join(get_kind(k).description for k in tech.accepts)
        reason = f"needs {wants} as input; '{baseline.path}' is {baseline.kind.description}"
        if _holds_ok_variant(folder):  # never replace the other framework's ok variant with this skip
            variant.status, variant.reason = "skipped", reason
            return variant
        return _finish_early(folder, variant, "skipped", reason)
    try:
        ok, why = tech.available()
    except Exception as exc:  # noqa: BLE001
        ok, why = False, f"availability check failed: {one_line(exc)}"
    if not ok:
        return _finish_early(folder, variant, "skipped", why or "not available here")
    t0 = time.perf_counter()
    try:
        with atomic_path(folder) as tmp:
            tmp.mkdir()
            job = {"name": tech.name, "module": tech.module, "baseline": str(baseline.path),
                   "arch": baseline.arch, "arch_args": baseline.arch_args, "contract": baseline.contract.to_dict(),
                   "settings": settings_dict(settings), "seed": seed,
                   "threads": threads, "out": str(tmp),
                   "data": None if data_cfg is None else {"roots": [str(r) for r in data_cfg.roots],
                                                          "test_circuits": list(data_cfg.test_circuits),
                                                          "cache_dir": None if data_cfg.cache_dir is None
                                                          else str(data_cfg.cache_dir), "seed": seed,
                                                          "geometry": vars(data_cfg.geometry)}}
            reply = _run_child(job, timeout)
            if "skipped" in reply:
                raise RuntimeUnavailable(reply["skipped"])
            if "failed" in reply:
                raise _TechniqueFailed(reply["failed"])
            variant.artifact = reply["artifact"]
            variant.runtime = reply.get("runtime") or variant.runtime
            variant.arch = reply.get("arch")
            variant.arch_args = reply.get("arch_args") or {}
            variant.record.update(reply["record"])
            variant.record["wall_s"] = round(time.perf_counter() - t0, 3)
            write_variant(tmp, variant)
        return variant
    except RuntimeUnavailable as exc:
        status, reason = "skipped", str(exc)
    except _TechniqueFailed as exc:
        status, reason = "failed", str(exc)
    except Exception as exc:  # noqa: BLE001 - one technique failing never stops the others
        status, reason = "failed", one_line(exc)
    variant.record["wall_s"] = round(time.perf_counter() - t0, 3)
    return _finish_early(folder, variant, status, reason)


def _holds_ok_variant(folder: Path) -> bool:
    try:
        return (folder / VARIANT_FILE).is_file() and read_variant(folder).status == "ok"
    except BadInputError:
        return False


class _TechniqueFailed(RuntimeError):
    pass


def _finish_early(folder: Path, variant: Variant, status: str, reason: str) -> Variant:
    """A folder holding only variant.json (failed / skipped)."""
    from pilotopt.atomic import atomic_path

    variant.status, variant.reason, variant.artifact = status, reason, None
    with atomic_path(folder) as tmp:
        tmp.mkdir()
        write_variant(tmp, variant)
    return variant


def _run_child(job: dict, timeout: float | None = None) -> dict:
    """Run the technique in a fresh interpreter (isolation.run_job: not a fork, TensorFlow is not
    fork-safe); its reply, or {"failed": how the process died}."""
    from pilotopt.isolation import DEBUG_ENV, run_job

    out = run_job(["-c", "from pilotopt.techniques._runner import child_cli; child_cli()"], job, timeout=timeout,
                  scratch_prefix="pilotopt-technique-", who="the technique's process",
                  hint=None if os.environ.get(DEBUG_ENV) else "rerun with PILOTOPT_DEBUG=1 to see its output")
    return out.reply if out.reply is not None else {"failed": out.reason}


# -- the child -------------------------------------------------------------------------------------
def child_cli() -> None:
    import sys

    child_main(json.loads(Path(sys.argv[1]).read_text()), sys.argv[2])


def child_main(job: dict, reply_file: str) -> None:
    from pilotopt.isolation import DEBUG_ENV, set_env_defaults

    set_env_defaults()
    try:
        reply = _child_apply(job)
    except RuntimeUnavailable as exc:
        reply = {"skipped": str(exc)}
    except BaseException as exc:  # noqa: BLE001
        if os.environ.get(DEBUG_ENV):
            traceback.print_exc()
        reply = {"failed": one_line(exc)}
    from pilotopt.atomic import write_json

    write_json(reply_file, reply)


def _child_apply(job: dict) -> dict:
    from pilotopt.artifacts import open_artifact
    from pilotopt.frameworks import quiet_conversion

    if job.get("module"):
        importlib.import_module(job["module"])
    tech = _TECHNIQUES.get(job["name"]) or techniques().get(job["name"])
    if tech is None:
        raise RuntimeError(f"technique '{job['name']}' is not registered in the child process")
    settings = tech.make_settings(job["settings"])
    data_cfg = None
    if job.get("data"):
        from pilotopt.data import DataConfig
        from pilotopt.preprocess import Geometry

        data = dict(job["data"])
        data["geometry"] = Geometry(**data["geometry"]) if data.get("geometry") else Geometry()
        data_cfg = DataConfig(**data)
    baseline = open_artifact(job["baseline"], arch=job.get("arch"), arch_args=job.get("arch_args") or None,
                             contract=job["contract"])
    out = Path(job["out"])
    ctx = TechniqueContext(baseline, settings, job["seed"], job["threads"], out, data_cfg)
    t0 = time.perf_counter()
    with quiet_conversion():
        result = tech.apply(ctx)
    duration = time.perf_counter() - t0
    dest = out / result.artifact
    if not dest.exists():
        raise RuntimeError(f"technique wrote no {result.artifact}")
    record = dict(result.record)
    record["duration_s"] = round(duration, 3)
    record["size_bytes"] = tree_size(dest)
    runtime = result.runtime or tech.runtime
    produced = open_artifact(dest, arch=baseline.arch if _weights_only(dest) else None,
                             arch_args=baseline.arch_args or None, contract=baseline.contract.to_dict())
    with quiet_conversion():
        record.update(_check(tech, ctx, produced, runtime))
    return {"artifact": result.artifact, "record": record, "runtime": runtime, "arch": produced.arch,
            "arch_args": produced.arch_args}


def _weights_only(path: Path) -> bool:
    from pilotopt.artifacts import detect_kind

    kind = detect_kind(path)
    return kind is not None and kind.needs_arch


def _check(tech: Technique, ctx: TechniqueContext, produced, runtime: str) -> dict:
    """The result's outputs vs the input model's, both fed through the input contract exactly as
    the evaluation will feed them (training frames if there is data, else seeded random images):
    a variant is ok only if it loads and runs that way."""
    import numpy as np

    from pilotopt.artifacts import load_artifact_predictor

    if ctx._data_config is not None:
        split = ctx.train.split
        order = np.random.default_rng(ctx.seed).permutation(len(split))[:max(1, min(CHECK_FRAMES, len(split)))]
        images, _ = split.batch(np.sort(order))
        kind = "train"
    else:
        g = ctx.contract.geometry
        t = ctx.sequence_length
        shape = (CHECK_FRAMES, t, *g.image_shape) if t > 1 else (CHECK_FRAMES, *g.image_shape)
        images, kind = np.random.default_rng(1234).integers(0, 256, size=shape).astype(np.uint8), "random"
    reference = load_artifact_predictor(ctx.baseline, threads=ctx.threads).predict(images)
    got = load_artifact_predictor(produced, runtime=runtime, threads=ctx.threads).predict(images)
    diff = float(np.max(np.abs(got - reference)))
    if tech.tolerance is not None and (not np.isfinite(diff) or diff > tech.tolerance):
        raise RuntimeError(f"outputs differ from the baseline by {diff:.3g} (> {tech.tolerance:g}) "
                           f"on {len(images)} {kind} frames")
    return {"check_max_abs_diff": diff, "check_frames": int(len(images)), "check_frames_from": kind}
