"""Every variant of an artifacts folder timed side by side in ONE process, against the framework
baseline: the claims of the PyTorch techniques issue, measured rather than asserted.

Rounds run round-robin (load, warm up, time, release; next variant), and each variant's batch-1
latency is the median of its per-round p50s, so a burst of background load hits every variant
alike. Test-set MSE comes from the same frames for all. A variant whose runtime differs from the
baseline's is also compared with the UNCHANGED baseline in its own runtime (e.g. the channel-pruned
TorchScript against the baseline traced to TorchScript), so a speed-up is not the runtime's doing.

Claims written to the JSON:
- `fast_and_accurate`: variants >= `speedup_goal` x faster than the baseline at batch 1 with test
  MSE within `mse_tolerance` of the baseline's;
- `same_runtime`: each variant vs the unchanged baseline in the variant's runtime."""

from __future__ import annotations

import gc
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

from pilotopt import __version__
from pilotopt.artifacts import artifact_bytes
from pilotopt.bench.floor import measure_call_floors
from pilotopt.bench.machine import measure_peaks
from pilotopt.bench.host import contention, cpu_name, cpu_snapshot, versions
from pilotopt.data import DataConfig, load_splits
from pilotopt.errors import BadInputError, PilotoptError, RuntimeUnavailable, one_line
from pilotopt.evaluate.latency import time_calls
from pilotopt.evaluate.results import precision_of, variant_macs
from pilotopt.models import get_model_spec
from pilotopt.records import SameRuntimeClaim, SpeedClaim, TechniqueBenchRow
from pilotopt.report.tables import FP32_IN_RUNTIME
from pilotopt.runtimes import load_predictor
from pilotopt.variants import read_variant

BENCH_SCHEMA = "pilotopt.bench.techniques/1"
BASELINES = {"torch": "torch", "tf": "keras"}


def _baseline_in(runtime: str, baseline_artifact: Path, scratch: Path, threads: int) -> Path | None:
    """The unchanged baseline converted to `runtime`, when pilotopt can make it without a technique."""
    if runtime == "torchscript":
        base = load_predictor(baseline_artifact, runtime="torch", threads=threads)
        import torch

        example = torch.zeros((1, *get_model_spec(base.model).sample_shape))
        with torch.inference_mode():
            traced = torch.jit.trace(base.net, example)
        path = scratch / "baseline.torchscript.pt"
        traced.save(str(path))
        return path
    return None


def _timed(path: Path, runtime: str, threads: int, x1: np.ndarray, min_calls: int, min_seconds: float) -> float:
    predict = load_predictor(path, runtime=runtime, threads=threads).predict
    try:
        return time_calls(lambda: predict(x1), min_calls=min_calls, min_seconds=min_seconds).p50_ms
    finally:
        predict = None  # release the runtime before the next one loads
        gc.collect()


def _mse(path: Path, runtime: str, threads: int, x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    predictor = load_predictor(path, runtime=runtime, threads=threads)
    try:
        out = np.concatenate([predictor.predict(x[i: i + 64]) for i in range(0, len(x), 64)])
        return float(np.mean((out - y) ** 2)), out
    finally:
        del predictor
        gc.collect()


def _test_frames(data: Path, cache_dir, n: int, test_circuits) -> tuple[np.ndarray, np.ndarray, str]:
    """`n` frames evenly spread over the test split (the held-out circuits), with labels."""
    kw = {"test_circuits": tuple(test_circuits)} if test_circuits else {}
    split = load_splits(DataConfig(roots=[data], cache_dir=cache_dir, **kw)).test
    if len(split) == 0:
        raise BadInputError(f"dataset '{data}' has no test frames; pass --test-circuits with circuits it holds")
    idx = np.unique(np.linspace(0, len(split) - 1, min(n, len(split))).round().astype(np.int64))
    x, y = split.batch(idx)
    return (np.asarray(x, np.float32), np.asarray(y, np.float32),
            f"test split of {data} ({len(idx)} of {len(split)} frames)")


def bench_techniques(variants_dir: Path | str, data: Path | str, cache_dir: Path | None = None, threads: int = 2,
                     frames: int = 2000, rounds: int = 3, min_calls: int = 200, min_seconds: float = 1.0,
                     speedup_goal: float = 3.0, mse_tolerance: float = 0.10,
                     test_circuits: tuple[str, ...] | None = None,
                     progress: Callable[[str], None] | None = None, peak_seconds: float = 3.0) -> dict:
    say = progress or (lambda _m: None)
    root = Path(variants_dir)
    if not root.is_dir():
        raise BadInputError(f"variants folder '{root}' does not exist; pass the --out folder of `pilotopt optimize`")
    variants = [read_variant(p) for p in sorted(root.iterdir()) if (p / "variant.json").is_file()]
    if not variants:
        raise BadInputError(f"'{root}' holds no variant folders (each with variant.json)")
    ok = [v for v in variants if v.status == "ok"]
    frameworks = {v.framework for v in ok}
    missing = [BASELINES[f] for f in frameworks if not any(v.name == BASELINES[f] for v in ok)]
    if missing:
        raise BadInputError(f"'{root}' has no ok baseline variant {', '.join(missing)}; run "
                            f"`pilotopt optimize --techniques {','.join(missing)}` into it first")
    x, y, source = _test_frames(Path(data), cache_dir, frames, test_circuits)
    x1 = x[:1]

    models = {v.framework: v.record.get("model") for v in ok if v.name == BASELINES[v.framework]}
    models = {fw: m if m not in (None, "torchscript", "onnx", "keras") else None for fw, m in models.items()}
    models.setdefault("tf", None)
    if models.get("tf") is None and models.get("torch"):
        models["tf"] = models["torch"]  # both baselines of a run share one architecture

    def macs_of(v):
        n, src = variant_macs(v.record, models.get(v.framework))
        return {"macs": n, "macs_from": src, "precision": precision_of(v.name, v.record)}

    rows = {v.name: TechniqueBenchRow(
        name=v.name, technique=v.technique, framework=v.framework, runtime=v.runtime, status=v.status,
        reason=v.reason, steps=list(v.steps or [v.name]), **macs_of(v),
        size_bytes=artifact_bytes(root / v.name / v.artifact) if v.artifact else None,
        artifact=str(root / v.name / v.artifact) if v.artifact else None, p50_rounds_ms=[]) for v in variants}

    def update(name: str, **fields) -> None:
        rows[name] = rows[name].model_copy(update=fields)

    snap = cpu_snapshot()
    t_start = time.perf_counter()
    peaks = None
    if peak_seconds > 0:
        say("measuring the machine's GEMM peaks (pilotopt bench machine)")
        peaks = measure_peaks(threads, peak_seconds)

        say("measuring each runtime's per-call floor (a flatten + dense model with PilotNet's input)")
        peaks["call_floors"] = measure_call_floors(threads, min(peak_seconds, 1.0))
    floors = ((peaks or {}).get("call_floors") or {}).get("floors_ms") or {}
    with tempfile.TemporaryDirectory(prefix="pilotopt-bench-") as scratch:
        pairs: dict[str, Path] = {}  # "<runtime>@<framework>" -> the baseline converted to that runtime
        for v in ok:
            base = rows[BASELINES[v.framework]]
            key = f"{v.runtime}@{v.framework}"
            if v.runtime != base.runtime and key not in pairs:
                try:
                    made = _baseline_in(v.runtime, Path(base.artifact), Path(scratch), threads)
                except Exception as exc:  # noqa: BLE001 - a missing pair is recorded, not fatal
                    made = None
                    say(f"cannot convert the baseline to {v.runtime}: {exc}")
                if made is not None:
                    pairs[key] = made
                    rows[f"{base.name}@{v.runtime}"] = TechniqueBenchRow(
                        macs=base.macs, macs_from=base.macs_from, precision="fp32", steps=[base.name, v.runtime],
                        name=f"{base.name}@{v.runtime}", technique=base.name, framework=v.framework,
                        runtime=v.runtime, status="ok", reason=None, size_bytes=made.stat().st_size,
                        artifact=str(made), p50_rounds_ms=[],
                        note="the unchanged baseline in this runtime (reference)")
        for r in [r for r in rows.values() if r.status == "ok"]:
            try:
                update(r.name, mse=_mse(Path(r.artifact), r.runtime, threads, x, y)[0])
            except (RuntimeUnavailable, PilotoptError) as exc:
                update(r.name, status="skipped" if isinstance(exc, RuntimeUnavailable) else "failed", reason=str(exc))
            except Exception as exc:  # noqa: BLE001
                update(r.name, status="failed", reason=one_line(exc))
        timed = [r.name for r in rows.values() if r.status == "ok"]
        for k in range(rounds):
            for i, name in enumerate(timed, 1):
                r = rows[name]
                say(f"round {k + 1}/{rounds} [{i}/{len(timed)}] {name}")
                p50 = _timed(Path(r.artifact), r.runtime, threads, x1, min_calls, min_seconds)
                update(name, p50_rounds_ms=[*r.p50_rounds_ms, p50])
    for name, r in list(rows.items()):
        if r.p50_rounds_ms:
            p50 = float(np.median(r.p50_rounds_ms))
            figures = {"p50_ms": p50}
            if r.runtime in floors:  # what the call costs before any MAC, and what the MACs cost
                figures.update(floor_ms=floors[r.runtime], above_floor_ms=p50 - floors[r.runtime])
            if r.macs:
                gmacs = r.macs / (p50 / 1e3) / 1e9
                peak = (peaks or {}).get(f"{r.precision}_gmacs")
                figures.update(gmacs_per_s=gmacs, peak_share=gmacs / peak if peak else None)
            update(name, **figures)
    claims = _claims(rows, speedup_goal, mse_tolerance)
    out_rows = [r.to_json() for r in rows.values()]
    share, warnings = contention(snap, 0.15, "latencies")
    return {"schema": BENCH_SCHEMA, "pilotopt": __version__, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "seconds": round(time.perf_counter() - t_start, 1),
            "machine": {"cpu": cpu_name(), "threads": threads, "other_processes_cpu_share": share, "peaks": peaks},
            "versions": versions(),
            "settings": {"variants": str(root), "frames": source, "rounds": rounds, "min_calls": min_calls,
                         "min_seconds": min_seconds, "speedup_goal": speedup_goal, "mse_tolerance": mse_tolerance},
            "notes": ["p50_ms: median over rounds of the batch-1 p50 of the model call alone",
                      "speedup = baseline p50 / variant p50 (> 1 is faster); mse_ratio = variant MSE / baseline MSE",
                      "<baseline>@<runtime> rows: the unchanged baseline converted to that runtime",
                      "gmacs_per_s = MACs per prediction / p50; peak_share = that / the machine's measured GEMM "
                      "peak of the variant's precision (machine.peaks)",
                      "floor_ms: the runtime's per-call cost (machine.peaks.call_floors); above_floor_ms = p50 - "
                      "floor, what the variant's own work costs"],
            "warnings": warnings, "rows": out_rows, "claims": claims}


def _claims(rows: dict[str, TechniqueBenchRow], goal: float, tol: float) -> dict:
    """The claims over `rows`; each timed row gets its speed-up and MSE ratio against its baseline."""
    fast, same = [], []
    for name, r in list(rows.items()):
        base = rows.get(BASELINES.get(r.framework, ""))
        if r.p50_ms is None or base is None or base.p50_ms is None or base.mse is None:
            continue
        r = rows[name] = r.model_copy(update={"speedup": base.p50_ms / r.p50_ms,
                                              "mse_ratio": r.mse / base.mse if base.mse else None})
        if r.name != base.name and r.speedup >= goal and r.mse_ratio is not None and r.mse_ratio <= 1 + tol:
            fast.append(r)
        if "@" in r.name:
            continue

        ref = rows.get(f"{base.name}@{r.runtime}") if r.runtime != base.runtime else base
        if ref is None or ref.name == r.name:  # the fp32 variant in that runtime (executorch_fp32, onnx_fp32, ...)
            ref = rows.get(FP32_IN_RUNTIME.get(r.runtime, ""))
        if ref is not None and ref.name != r.name and ref.p50_ms:
            same.append(SameRuntimeClaim(name=r.name, runtime=r.runtime, reference=ref.name,
                                         speedup_same_runtime=ref.p50_ms / r.p50_ms,
                                         faster=r.p50_ms < ref.p50_ms).to_json())
    fast = [SpeedClaim(name=r.name, speedup=r.speedup, mse_ratio=r.mse_ratio).to_json()
            for r in sorted(fast, key=lambda r: -r.speedup)]
    return {"fast_and_accurate": fast, "meets_speedup_goal": bool(fast), "same_runtime": same}


def claim_lines(doc: dict, speedup_goal: float, mse_tolerance: float) -> list[str]:
    """The claims of a bench techniques document, one line each (what the CLI prints under the table)."""
    claims = doc["claims"]
    lines = [f">= {speedup_goal:g}x and MSE within {mse_tolerance:.0%}: {c.name} ({c.speedup:.2f}x, MSE x{c.mse_ratio:.3f})"
             for c in (SpeedClaim.from_json(item) for item in claims["fast_and_accurate"])]
    lines += [f"same runtime: {c.name} vs {c.reference} in {c.runtime}: {c.speedup_same_runtime:.2f}x"
              for c in (SameRuntimeClaim.from_json(item) for item in claims["same_runtime"])]
    return lines


def render_table(doc: dict):
    from rich.table import Table

    t = Table(title=f"techniques side by side ({doc['settings']['rounds']} rounds)")
    for col in ("variant", "runtime", "size MB", "test MSE", "MSE ratio", "MMACs", "p50 ms", "floor ms", "GMAC/s",
                "% peak", "speed-up", "status"):
        t.add_column(col, justify="right" if col not in ("variant", "runtime", "status") else "left")

    def f(v, fmt):
        return "-" if v is None else format(v, fmt)

    for r in (TechniqueBenchRow.from_json(row, "a bench techniques row") for row in doc["rows"]):
        t.add_row(r.name, r.runtime, f(r.size_bytes and r.size_bytes / 1e6, ".2f"), f(r.mse, ".5f"),
                  f(r.mse_ratio, ".3f"), f(r.macs and r.macs / 1e6, ".1f"), f(r.p50_ms, ".3f"),
                  f(r.floor_ms, ".3f"), f(r.gmacs_per_s, ".1f"),
                  f(r.peak_share and 100 * r.peak_share, ".0f") + (f" {r.precision}" if r.peak_share else ""),
                  f(r.speedup, ".2f"), r.status if r.status == "ok" else f"{r.status}: {r.reason}")
    return t
