"""evaluate_artifacts: every variant of an artifacts folder measured by one protocol (spec 6).

    doc = evaluate_artifacts("artifacts", ["data"], "eval", threads=2)
    doc["variants"]  # one row per variant; also written to eval/results.json and eval/results.csv

The parent validates everything it can before any work (variants, runtimes, data, output folder),
prepares the test frames once (`testset`), then runs each `ok` variant in a fresh worker process
(`python -m pilotopt.evaluate.worker`), one at a time, with a timeout. A worker that crashes, hangs
or raises makes its variant `failed` with a one-line reason; the others are still measured.
Variants marked skipped/failed by their producer are carried with their reasons. Each measured
result is kept in OUT/variants/<name>.json with its predictions, keyed by the artifact's bytes and
the protocol, and reused on the next run unless `force`."""

from __future__ import annotations

import hashlib
import json
import math
import numbers
import os
import re
import resource
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from pilotopt.artifacts import (artifact_digest, detect_kind, open_artifact, params_from_record, recorded_variant,
                                resolve_path, size_info)
from pilotopt.atomic import ensure_writable_dir, write_json
from pilotopt.contracts import load_contract
from pilotopt.data.config import DEFAULT_TEST_CIRCUITS
from pilotopt.errors import BadInputError
from pilotopt.evaluate.accuracy import compare, error_metrics
from pilotopt.evaluate.latency import MIN_CALLS, MIN_SECONDS
from pilotopt.evaluate.plugins import load_runtime_plugins
from pilotopt.evaluate.results import RESULTS_SCHEMA, base_row, machine_info, write_results
from pilotopt.records import CrossCheck, OfflineRow, WorkerReply
from pilotopt.evaluate.testset import prepare_testset
from pilotopt.evaluate.worker import PHASE_MARK
from pilotopt.isolation import child_env, run_python
from pilotopt.preprocess import PILOTNET_GEOMETRY
from pilotopt.runtimes import runtime_names
from pilotopt.variants import VARIANT_FILE, Variant, read_variants

WORKER_VERSION = 1  # bump when the worker measures differently: invalidates cached results
VARIANT_RESULT_SCHEMA = "pilotopt.result.variant/2"  # /2: brain-step latency samples
DEFAULT_TIMEOUT = 900.0
THROUGHPUT_BATCH = 64  # batch of the throughput measurement and the accuracy pass

Progress = Callable[[str, int, int, dict], None]


def evaluate_artifacts(artifacts_dir: Path | str, data_roots: Sequence[Path | str] | Path | str, out_dir: Path | str,
                       threads: int = 2, test_circuits: Sequence[str] | str = DEFAULT_TEST_CIRCUITS,
                       cache_dir: Path | str | None = None, min_calls: int = MIN_CALLS,
                       min_seconds: float = MIN_SECONDS, throughput_batch: int = THROUGHPUT_BATCH, max_frames: int | None = None, progress: Progress | None = None,
                       *, force: bool = False, timeout: float = DEFAULT_TIMEOUT, warmup_calls: int = 20,
                       warmup_seconds: float = 0.5, max_seconds: float = 60.0, arch: str | None = None,
                       arch_args: dict | None = None, contract=None, only: set[str] | None = None,
                       target=None, target_iterations: int = 200) -> dict:
    """Measure every variant under `artifacts_dir` (or those named in `only`) on the held-out
    circuits of `data_roots`; write OUT/results.json and OUT/results.csv and return the results
    document.

    `artifacts_dir` may also be one model file or folder (any kind pilotopt reads), measured as the
    variant named after it with `arch`, `arch_args` and the input `contract` (see open_artifact).

    `target` (a pilotopt.targets.Target, e.g. parse_target("ssh://pi@car")): each ok variant's brain
    step is also timed on that device (`target_iterations` steps, pilotopt-edge bench there) and
    its row gets `on_target`; results are kept in OUT/target/ and reused. The device is reached
    before any work, so a wrong target fails at once.

    progress(phase, done, total, info): phase "data" while frames are decoded (first run only),
    "variant" before (info["state"] == "start") and after ("done", with info["row"]) each variant,
    "target" after each variant timed on the target (info["result"]: its TargetLatency)."""
    _check_settings(threads=threads, min_calls=min_calls, min_seconds=min_seconds, throughput_batch=throughput_batch,
                    max_frames=max_frames, timeout=timeout, warmup_calls=warmup_calls, warmup_seconds=warmup_seconds,
                    max_seconds=max_seconds)
    found = _check_variants(artifacts_dir, arch, arch_args, contract)
    if only is not None:
        found = [(folder, v) for folder, v in found if v.name in only]
    if isinstance(data_roots, (str, Path)):
        data_roots = [data_roots]
    data_roots = [Path(r) for r in data_roots]
    if not data_roots:
        raise BadInputError("no dataset folder given; pass --data with the recordings' root folder")
    for root in data_roots:
        if not root.is_dir():
            raise BadInputError(f"dataset folder '{root}' does not exist; pass the folder that holds the recordings")
    if isinstance(test_circuits, str):
        test_circuits = [c for c in test_circuits.split(",")]
    test_circuits = tuple(c.strip().lower() for c in test_circuits if c.strip())
    if not test_circuits:
        raise BadInputError(f"no test circuits given; pass --test-circuits, e.g. {','.join(DEFAULT_TEST_CIRCUITS)}")
    device = None
    if target is not None:  # unreachable, refused, no Python, no edge package: one line, before any work
        device = target.describe()
    out_dir = ensure_writable_dir(out_dir)
    work, store, logs = out_dir / ".work", out_dir / "variants", out_dir / "logs"
    for folder in (work, store, logs):
        ensure_writable_dir(folder)

    data_progress = (lambda done, total: progress("data", done, total, {})) if progress else None
    geometries = _geometries(found)
    testsets: dict = {}
    for geometry in geometries:  # one test set per input geometry (crop rows and size) in the folder
        testsets[geometry] = prepare_testset(data_roots, test_circuits, cache_dir, max_frames, work, data_progress,
                                             geometry=geometry, keep=[d for d, _ in testsets.values()])
    testset_dir, testset = testsets[geometries[0]]
    labels = np.load(testset_dir / "labels.npy")

    protocol = {
        "threads": threads, "test_circuits": list(test_circuits), "max_frames": max_frames,
        "frames": testset["samples"], "testset_digest": "+".join(t["digest"] for _, t in testsets.values()),
        "min_calls": min_calls, "min_seconds": min_seconds, "warmup_calls": warmup_calls,
        "warmup_seconds": warmup_seconds, "max_seconds": max_seconds,
        "throughput_batch": throughput_batch, "throughput_min_calls": max(5, min_calls // 10),
        "timeout_s": timeout, "worker_version": WORKER_VERSION,
        "latency": "batch 1, one preprocessed test frame (float32 1x66x200x3), the model call alone",
        "brain_step": "batch 1, crop_resize of one rendered 640x480 frame to the contract's geometry + the contract's "
                      "scaling and layout + the model call",
        "throughput": f"frames/s at batch {throughput_batch} (batch / mean call time)",
        "accuracy": f"every test frame, batches of {throughput_batch}; MSE normalized, MAE physical units",
        "memory": "worker peak RSS (VmHWM) after latency and throughput, and its RSS before loading the model",
        "background_cpu": "CPUs used on average by other processes while the worker ran (/proc/stat)",
        "isolation": "each variant in a fresh Python process, one at a time",
    }
    machine = machine_info(threads)
    fingerprint = _fingerprint(protocol, machine)

    rows: list[dict] = []
    preds: dict[str, np.ndarray] = {}
    total = len(found)
    sizes = _sizes(found, threads)
    for i, (folder, variant) in enumerate(found):
        if progress:
            progress("variant", i, total, {"name": variant.name, "state": "start"})
        row = _evaluate_one(folder, variant, size=sizes[i], fingerprint=fingerprint, protocol=protocol,
                            testset_dir=testsets[_geometry_of(variant)][0], labels=labels, work=work, store=store,
                            logs=logs, force=force, preds=preds)
        rows.append(row)
        if progress:
            progress("variant", i + 1, total, {"name": variant.name, "state": "done", "row": row})

    if target is not None:
        _time_on_target(target, found, rows, out_dir / "target", target_iterations, force, progress)
    typed = _cross_check([OfflineRow.from_json(r, f"evaluate's row '{r['name']}'") for r in rows], preds)
    doc = {"schema": RESULTS_SCHEMA, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
           "artifacts": str(Path(artifacts_dir).resolve()), "data": [str(r.resolve()) for r in data_roots],
           "machine": machine, "protocol": protocol, "testset": {**testset, "folder": str(testset_dir)},
           "testsets": [{**t, "folder": str(d)} for d, t in testsets.values()],
           "variants": [r.to_json() for r in typed]}
    if device is not None:
        doc["target"] = {"spec": target.name, "device": device.device.to_json(), "runtimes": device.runtimes,
                         "edge_version": device.edge_version, "threads": target.threads,
                         "iterations": target_iterations}
    write_results(out_dir, doc)
    return doc


def _time_on_target(target, found, rows: list[dict], store: Path, iterations: int, force: bool,
                    progress: Progress | None) -> None:
    """Each ok row's `on_target`: its variant timed on the target (or why it cannot run there)."""
    todo = [(folder, v, row) for (folder, v), row in zip(found, rows) if row["status"] == "ok"]
    for i, (folder, variant, row) in enumerate(todo):
        tl = target.measure(folder, variant, store, iterations=iterations, force=force)
        row["on_target"] = tl.to_json()
        if progress:
            progress("target", i + 1, len(todo), {"name": variant.name, "state": "done", "result": tl})


# -- checks before any work ----------------------------------------------------------------------

def _check_settings(**kw) -> None:
    def integer(name, minimum):
        v = kw[name]
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < minimum:
            raise BadInputError(f"{name.replace('_', '-')} must be an integer >= {minimum}, got {v!r}")

    def number(name, minimum, strict=False):
        v = kw[name]
        if (isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v)
                or v < minimum or (strict and v == minimum)):
            raise BadInputError(f"{name.replace('_', '-')} must be a number {'>' if strict else '>='} {minimum}, "
                                f"got {v!r}")

    integer("threads", 1)
    integer("min_calls", 1)
    integer("throughput_batch", 1)
    integer("warmup_calls", 0)
    number("min_seconds", 0)
    number("warmup_seconds", 0)
    number("max_seconds", 0, strict=True)
    number("timeout", 0, strict=True)
    if kw["max_frames"] is not None:
        integer("max_frames", 1)


def _geometry_of(variant: Variant):
    return load_contract(variant.contract).geometry


def _geometries(found) -> list:
    """The distinct input geometries of the measured variants, pilotopt's own first."""
    seen = list(dict.fromkeys(_geometry_of(v) for _, v in found))
    return sorted(seen, key=lambda g: g != PILOTNET_GEOMETRY) or [PILOTNET_GEOMETRY]


def _bare_model(path: Path, arch, arch_args, contract) -> list[tuple[Path, Variant]]:
    """One model file or folder given instead of an artifacts folder, as a variant of its own."""
    art = open_artifact(path, arch=arch, arch_args=arch_args, contract=contract)  # raises on a contradiction
    record = recorded_variant(path)
    if record is not None:  # a variant's artifact or folder: measured as that variant
        return [record]
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", art.path.stem if art.path.is_file() else art.path.name) or "model"
    variant = Variant(name=name, runtime=art.runtime, artifact=str(art.path.resolve()),
                      framework=art.framework, technique="", baseline=None,
                      record={"source": str(art.path), "input_kind": art.kind.name,
                              "contract_notes": list(art.contract.notes)},
                      contract=art.contract.to_dict(), arch=art.arch, arch_args=art.arch_args)
    return [(art.path.parent, variant)]


def _check_variants(artifacts_dir, arch=None, arch_args=None, contract=None) -> list[tuple[Path, Variant]]:
    load_runtime_plugins()

    root = Path(artifacts_dir)
    if root.is_file() or (root / VARIANT_FILE).is_file() or (root.is_dir() and detect_kind(resolve_path(root))):
        found = _bare_model(root, arch, arch_args, contract)
    else:
        found = read_variants(artifacts_dir)

    known = runtime_names()
    seen: dict[str, Path] = {}
    for folder, v in found:
        if not isinstance(v.name, str) or not v.name.strip():
            raise BadInputError(f"'{folder / VARIANT_FILE}' has no variant name; regenerate the variant")
        if v.name in seen:
            raise BadInputError(f"variant name '{v.name}' is used by both '{seen[v.name]}' and '{folder}'; "
                                "rename one of them")
        seen[v.name] = folder
        if v.status not in ("ok", "failed", "skipped"):
            raise BadInputError(f"'{folder / VARIANT_FILE}' has status '{v.status}'; expected ok, failed or skipped")
        if v.status == "ok" and v.runtime not in known:
            raise BadInputError(f"variant '{v.name}' ('{folder / VARIANT_FILE}') names unknown runtime "
                                f"'{v.runtime}'; use one of {', '.join(known)}")
    return found


def _fingerprint(protocol: dict, machine: dict) -> dict:
    keep = ("threads", "frames", "testset_digest", "min_calls", "min_seconds", "warmup_calls", "warmup_seconds",
            "max_seconds", "throughput_batch", "throughput_min_calls", "worker_version")
    return {"protocol": {k: protocol[k] for k in keep},
            "machine": {k: machine[k] for k in ("python", "processor", "cpu_count", "cpus_usable", "pilotopt",
                                                  "libraries")}}


def _contract_digest(variant: Variant) -> str:
    return load_contract(variant.contract).digest


def _safe(name: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip(".") or "variant"
    return safe if safe == name else f"{safe}-{hashlib.sha1(name.encode()).hexdigest()[:8]}"


# -- one variant ---------------------------------------------------------------------------------

_MEASURED = ("error", "latency_ms", "throughput", "memory_mb", "predictor", "load_seconds", "measure_seconds",
             "background_cpu", "params_error", "log", "input_contract", "outputs_out_of_range_share",
             "brain_step_samples_ms")


def _sizes(found, threads: int) -> list[dict]:
    """size_info of every artifact, before any timing: gzip -9 of a 6 MB model takes about half a
    second and zlib releases the GIL, so `threads` of them run at once (never beside a timed
    worker)."""
    from concurrent.futures import ThreadPoolExecutor

    paths = [folder / v.artifact if v.artifact else None for folder, v in found]
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        return list(pool.map(size_info, paths))


def _evaluate_one(folder: Path, variant: Variant, *, size: dict, fingerprint, protocol, testset_dir, labels, work,
                  store, logs, force, preds) -> dict:
    artifact = folder / variant.artifact if variant.artifact else None
    row = base_row(variant, artifact)
    row["size"].update(size)
    if variant.status != "ok":
        row["reason"] = variant.reason or f"marked {variant.status} by the stage that produced it"
        row["size"].update(params_from_record(variant.record) or {})
        return row
    if artifact is None or not artifact.exists():
        row.update(status="failed", reason=f"artifact '{artifact or folder}' is missing; re-export the variant")
        return row

    safe = _safe(variant.name)
    stored, pred_file = store / f"{safe}.json", store / f"{safe}.pred.npy"
    key = hashlib.sha256(json.dumps({"artifact": artifact_digest(artifact), "runtime": variant.runtime,
                                     **({"contract": _contract_digest(variant)} if variant.contract else {}),
                                     "testset": json.loads((testset_dir / "testset.json").read_text())["digest"],
                                     **fingerprint}, sort_keys=True).encode()).hexdigest()
    if not force:
        cached = _read_cached(stored, pred_file, key, len(labels))
        if cached is not None:
            measured, pred = cached
            row.update({k: measured[k] for k in _MEASURED if k in measured})
            row["size"].update(measured.get("params") or params_from_record(variant.record) or {})
            row["cached"] = True
            preds[variant.name] = pred
            return row

    job_dir = work / "jobs"
    ensure_writable_dir(job_dir)
    job = {"name": variant.name, "artifact": str(artifact), "runtime": variant.runtime,
           "contract": variant.contract, "arch": variant.arch, "arch_args": variant.arch_args,
           "threads": protocol["threads"], "testset": str(testset_dir),
           "min_calls": protocol["min_calls"], "min_seconds": protocol["min_seconds"],
           "warmup_calls": protocol["warmup_calls"], "warmup_seconds": protocol["warmup_seconds"],
           "max_seconds": protocol["max_seconds"], "throughput_batch": protocol["throughput_batch"],
           "throughput_min_calls": protocol["throughput_min_calls"],
           "result": str(job_dir / f"{safe}.result.json"), "predictions": str(job_dir / f"{safe}.pred.npy")}
    for stale in (job["result"], job["predictions"]):
        Path(stale).unlink(missing_ok=True)
    job_path = job_dir / f"{safe}.job.json"
    write_json(job_path, job)
    log = logs / f"{safe}.log"
    res = run_worker(job_path, Path(job["result"]), log, protocol["threads"], protocol["timeout_s"])
    row["log"] = str(log)
    if res.status != "ok":
        row.update(status=res.status, reason=res.reason or "the worker gave no reason")
        row["size"].update(params_from_record(variant.record) or {})
        stored.unlink(missing_ok=True)
        pred_file.unlink(missing_ok=True)
        return row
    pred = np.load(job["predictions"])

    def dump(part):
        return None if part is None else part.to_json()

    measured = {"error": error_metrics(pred, labels), "latency_ms": dump(res.latency_ms),
                "throughput": dump(res.throughput), "memory_mb": dump(res.memory_mb),
                "predictor": res.predictor, "load_seconds": res.load_seconds,
                "measure_seconds": res.measure_seconds, "background_cpu": res.background_cpu,
                "params": res.params, "log": str(log), "input_contract": res.input_contract,
                "outputs_out_of_range_share": res.outputs_out_of_range_share,
                "brain_step_samples_ms": res.brain_step_samples_ms}
    if res.params_error:
        measured["params_error"] = res.params_error
    row.update({k: measured[k] for k in _MEASURED if k in measured})
    row["size"].update(measured["params"] or params_from_record(variant.record) or {})
    os.replace(job["predictions"], pred_file)
    write_json(stored, {"schema": VARIANT_RESULT_SCHEMA, "name": variant.name, "cache_key": key,
                        "measured": measured})
    preds[variant.name] = pred
    return row


def _read_cached(stored: Path, pred_file: Path, key: str, n: int):
    try:
        doc = json.loads(stored.read_text())
        if doc.get("schema") != VARIANT_RESULT_SCHEMA or doc.get("cache_key") != key:
            return None
        pred = np.load(pred_file)
    except (OSError, ValueError):
        return None
    if pred.shape != (n, 2):
        return None
    return doc["measured"], pred


# -- the worker process --------------------------------------------------------------------------

def worker_env(threads: int) -> dict:
    """The worker's environment (isolation.child_env, with the BLAS/OpenMP thread variables)."""
    return child_env(threads)


def run_worker(job_path: Path, result_path: Path, log: Path, threads: int, timeout: float) -> WorkerReply:
    """Run one worker to completion (or kill it at `timeout`); its result, or a failure that says
    how it died and in which phase (isolation.run_python, the phase from the log's `@@phase` lines)."""
    busy0, own0 = _cpu_busy_seconds(), _children_cpu_seconds()
    out = run_python(["-m", "pilotopt.evaluate.worker", str(job_path)], result_path, timeout=timeout,
                     threads=threads, log=log, who="the worker", phase_mark=PHASE_MARK)
    busy1, own1 = _cpu_busy_seconds(), _children_cpu_seconds()
    if out.reply is None:
        return WorkerReply(status="failed", reason=out.reason)
    res = dict(out.reply)
    if busy0 is not None and busy1 is not None and out.seconds > 0:
        res["background_cpu"] = round(max(0.0, (busy1 - busy0) - (own1 - own0)) / out.seconds, 3)
    try:
        return WorkerReply.from_json(res, "the evaluation worker's reply")
    except BadInputError as exc:
        return WorkerReply(status="failed", reason=str(exc))


def _cpu_busy_seconds() -> float | None:
    """CPU-seconds all CPUs have spent busy since boot (Linux /proc/stat), else None."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[1:9])
        return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError):
        return None


def _children_cpu_seconds() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


# -- across variants -----------------------------------------------------------------------------

def _cross_check(rows: list[OfflineRow], preds: dict[str, np.ndarray]) -> list[OfflineRow]:
    """Each row with its agreement with its baseline on the same frames, and the speed-up and size
    ratio against it (None when either side has no predictions)."""
    by_name = {r.name: r for r in rows}
    out = []
    for row in rows:
        base = row.baseline
        xc = None
        if row.ok and base and base != row.name and base in preds and row.name in preds:
            ref = by_name[base]
            p50, ref_p50 = row.p50_ms, ref.p50_ms
            size, ref_size = row.size_bytes, ref.size_bytes
            xc = CrossCheck(baseline=base, **compare(preds[row.name], preds[base]),
                            speedup_p50=ref_p50 / p50 if p50 and ref_p50 else None,
                            size_ratio=size / ref_size if size and ref_size else None)
        out.append(row.model_copy(update={"cross_check": xc}))
    return out
