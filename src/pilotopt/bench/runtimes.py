"""The same trained model on every runtime, timed side by side in one process.

Each baseline (a torch checkpoint and/or a Keras model) is exported at fp32 to every runtime of
its framework (`pilotopt.techniques.fp32_conversions`), then each runtime in turn is loaded with
the same fixed thread count, its outputs on the benchmark frames are compared with its framework baseline (max abs
diff), and it is timed with `pilotopt.evaluate.latency.time_calls`: batch 1 latency and batch-64
throughput. One predictor is alive while it is timed (loaded, measured, released), so idle
thread pools of the others do not compete for the cores.

Speedups are `reference latency / row latency` (> 1: faster than the reference) against PyTorch
eager ("torch") and LiteRT fp32 ("tflite_fp32"), whichever were measured."""

from __future__ import annotations

import gc
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

from pilotopt import __version__
from pilotopt.artifacts import open_artifact
from pilotopt.bench.host import contention, cpu_name, cpu_snapshot, other_cpu_share, versions
from pilotopt.data import DataConfig, load_splits
from pilotopt.errors import BadInputError, PilotoptError, RuntimeUnavailable, one_line
from pilotopt.evaluate.latency import MIN_CALLS, MIN_SECONDS, time_calls
from pilotopt.frameworks import import_tf, import_torch
from pilotopt.models import get_model_spec
from pilotopt.records import Produced, RuntimeBenchRow
from pilotopt.runtimes import load_predictor
from pilotopt.techniques import fp32_conversions, optimize
from pilotopt.techniques._runner import baseline_variant_name

BENCH_SCHEMA = "pilotopt.bench.runtimes/1"
REFERENCES = {"torch": "torch", "litert": "tflite_fp32"}  # speedup key -> variant name
AGREE_TOLERANCE = 1e-4  # max |diff| to the framework baseline for an fp32 runtime to "agree"


def load_frames(sample_shape: tuple[int, ...], n: int, data: Path | None, cache_dir: Path | None,
                sequence_length: int = 1) -> tuple[np.ndarray, np.ndarray | None, str]:
    """`n` benchmark frames spread over the test split of `data` (with labels), or seeded random
    uint8-valued frames when no data is given."""
    if data is None:
        rng = np.random.default_rng(0)
        return rng.integers(0, 256, size=(n, *sample_shape)).astype(np.float32), None, "random uint8 (seed 0)"

    splits = load_splits(DataConfig(roots=[Path(data)], cache_dir=cache_dir, sequence_length=sequence_length))
    split = splits.test if len(splits.test) else splits.val
    if len(split) == 0:
        raise BadInputError(f"dataset '{data}' has no test or validation samples to benchmark on")
    idx = np.linspace(0, len(split) - 1, n).round().astype(np.int64)
    x, y = split.batch(idx)
    x = np.asarray(x, dtype=np.float32)
    if tuple(x.shape[1:]) != tuple(sample_shape):
        raise BadInputError(f"frames from '{data}' have shape {tuple(x.shape[1:])} but the model expects "
                            f"{tuple(sample_shape)}")
    return x, np.asarray(y, dtype=np.float32), f"{split.name} split of {data} ({n} of {len(split)} samples)"


def _row(variant) -> RuntimeBenchRow:
    return RuntimeBenchRow(
        name=variant.name, runtime=variant.runtime, framework=variant.framework,
        precision=variant.record.get("precision", "fp32"), status=variant.status, reason=variant.reason,
        baseline=variant.baseline or variant.name,
        artifact=f"{variant.name}/{variant.artifact}" if variant.artifact else None,  # under settings.artifacts
        size_bytes=Produced.of(variant.record).size_bytes)


def _measure(path: Path, runtime: str, threads: int, x: np.ndarray, y: np.ndarray | None,
             reference: np.ndarray | None, min_calls: int, min_seconds: float) -> tuple[dict, np.ndarray | None]:
    """Load, cross-check and time one runtime: the row's measured fields, and its outputs on `x`."""
    predictor = None
    got: dict = {}
    try:
        t0 = time.perf_counter()
        predictor = load_predictor(path, runtime=runtime, threads=threads)
        got["load_seconds"] = round(time.perf_counter() - t0, 3)
        got["describe"] = predictor.describe()
        out = predictor.predict(x)
        one = predictor.predict(x[:1])
        got["batch1_vs_batch_max_abs_diff"] = float(np.max(np.abs(one - out[:1])))
        ref = out if reference is None else reference
        diff = float(np.max(np.abs(out - ref)))
        got.update(max_abs_diff=diff, agrees=bool(diff <= AGREE_TOLERANCE))
        if y is not None:
            got["mse_vs_labels"] = float(np.mean((out - y) ** 2))
        x1, xb = x[:1], x
        snap = cpu_snapshot()
        b1 = time_calls(lambda: predictor.predict(x1), min_calls=min_calls, min_seconds=min_seconds)
        batch = time_calls(lambda: predictor.predict(xb), min_calls=max(5, min_calls // 15),
                           min_seconds=min_seconds, warmup_calls=3, warmup_seconds=0.2)
        got.update(latency_b1=b1, latency_batch=batch, other_cpu_share=other_cpu_share(snap, cpu_snapshot()),
                   p50_ms_b1=b1.p50_ms, throughput_fps=len(xb) * 1000.0 / batch.p50_ms)
        return got, out
    except RuntimeUnavailable as exc:
        got.update(status="skipped", reason=str(exc))
    except PilotoptError as exc:
        got.update(status="failed", reason=str(exc))
    except Exception as exc:  # noqa: BLE001 - one runtime failing never stops the bench
        got.update(status="failed", reason=one_line(exc, limit=300))
    finally:
        del predictor
        gc.collect()
    return got, None


def _speedups(rows: list[RuntimeBenchRow]) -> tuple[list[RuntimeBenchRow], dict]:
    """The rows with their speed-ups against each reference that was timed, and those references."""
    refs = {}
    for key, name in REFERENCES.items():
        ref = next((r for r in rows if r.name == name and r.timed), None)
        if ref is not None:
            refs[key] = name
            rows = [r.model_copy(update={f"speedup_b1_vs_{key}": ref.p50_ms_b1 / r.p50_ms_b1,
                                         f"speedup_batch_vs_{key}": r.throughput_fps / ref.throughput_fps})
                    if r.timed else r for r in rows]
    return rows, refs


def _trained_baseline(model_path: Path | str):
    """The trained framework model at `model_path` (a PyTorch checkpoint or state dict, a Keras
    model, or a training output folder) as an Artifact."""
    art = open_artifact(model_path)
    if art.framework not in ("torch", "tf") or not art.kind.trainable:
        raise BadInputError(f"'{art.path}' is not a trained baseline ({art.kind.description}); pass a PyTorch "
                            "checkpoint, a Keras .h5 / SavedModel folder, or a training output folder")
    return art


def bench_runtimes(models: list[Path | str], data: Path | None = None, cache_dir: Path | None = None,
                   threads: int = 2, batch: int = 64, artifacts: Path | None = None, min_calls: int = MIN_CALLS,
                   min_seconds: float = MIN_SECONDS, progress: Callable[[str], None] | None = None) -> dict:
    """Export each baseline to every runtime of its framework (its fp32 conversions) and time them
    side by side."""
    if not models:
        raise BadInputError("pass at least one --model (a torch model.pt or Keras .h5/SavedModel, "
                            "or a training folder)")
    if threads < 1 or batch < 1:
        raise BadInputError("--threads and --batch must be at least 1")
    if data is not None and not Path(data).is_dir():
        raise BadInputError(f"data folder '{data}' does not exist; pass a dataset root folder")
    baselines = [_trained_baseline(m) for m in models]
    frameworks = [b.framework for b in baselines]
    if len(set(frameworks)) != len(frameworks):
        raise BadInputError("pass at most one baseline per framework (one torch model and one tf model)")
    say = progress or (lambda _msg: None)

    import_torch(threads)  # every runtime's pool is fixed to `threads`; torch's before any use
    if "tf" in frameworks:
        import_tf(threads)

    started = time.time()
    cpu_start = cpu_snapshot()
    rows: list[RuntimeBenchRow] = []
    inputs: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="pilotopt-bench-") as scratch:
        root = Path(artifacts) if artifacts is not None else Path(scratch)
        for base in baselines:
            say(f"exporting {base.path} ({base.framework})")
            variants = optimize(base.path, fp32_conversions(base.framework), None, root, threads=threads, progress=say)
            by_name = {v.name: v for v in variants}
            ref_name = baseline_variant_name(base)
            ref_variant = by_name.get(ref_name)
            if ref_variant is None or ref_variant.status != "ok":
                raise BadInputError(f"cannot load the baseline '{base.path}': "
                                    f"{ref_variant.reason if ref_variant else 'not exported'}")
            spec_shape, seq = _baseline_shape(root / ref_variant.name / ref_variant.artifact, base.framework, threads)
            x, y, source = load_frames(spec_shape, batch, data, cache_dir, seq)
            inputs[base.framework] = {"baseline": str(base.path), "frames": source, "shape": list(x.shape)}
            reference = None
            # the framework baseline first: every other row is compared with its outputs
            for v in sorted(variants, key=lambda v: v.name != ref_name):
                row = _row(v)
                if v.status != "ok":
                    rows.append(row)
                    say(f"{v.name}: {v.status} ({v.reason})")
                    continue
                say(f"timing {v.name} ({v.runtime})")
                got, out = _measure(root / v.name / v.artifact, v.runtime, threads, x, y, reference,
                                    min_calls, min_seconds)
                rows.append(row := row.model_copy(update=got))
                if v.name == ref_name:
                    if out is None:
                        raise BadInputError(f"the baseline '{base.path}' did not run: {row.reason}")
                    reference = out
    rows, refs = _speedups(rows)
    other, warnings = contention(cpu_start, 0.1, "latencies")
    if warnings:
        warnings = [f"other processes used {other:.0%} of the machine's CPU time during the run and competed "
                    "with the timed runtimes: latencies are inflated and noisy; rerun on a quiet machine"]
    return {
        "schema": BENCH_SCHEMA,
        "pilotopt": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "seconds": round(time.time() - started, 1),
        "machine": {"cpu": cpu_name(), "cpu_count": os.cpu_count(), "python": platform.python_version(),
                    "other_processes_cpu_share": other},
        "versions": versions(),
        "settings": {"threads": threads, "batch": batch, "min_calls_b1": min_calls,
                     "min_calls_batch": max(5, min_calls // 15), "min_seconds": min_seconds,
                     "agree_tolerance": AGREE_TOLERANCE, "artifacts": str(artifacts) if artifacts else None},
        "inputs": inputs,
        "references": refs,
        "notes": ["latency: p50 of time_calls at batch 1; throughput: batch frames / p50 batch latency",
                  "speedup = reference latency / row latency (> 1 is faster); references: torch = PyTorch "
                  "eager, litert = tflite_fp32",
                  "max_abs_diff: against the framework baseline (torch or keras) on the same frames; separately "
                  "trained torch and tf baselines are not compared with each other"],
        "warnings": warnings,
        "rows": [r.to_json() for r in rows],
    }


def _baseline_shape(path: Path, framework: str, threads: int) -> tuple[tuple[int, ...], int]:
    """(sample shape, sequence length) of the baseline model."""
    p = load_predictor(path, runtime="torch" if framework == "torch" else "keras", threads=threads)
    if framework == "torch":
        spec = get_model_spec(p.model)
        return tuple(spec.sample_shape), spec.sequence_length
    shape = tuple(int(d) for d in p.net.input_shape[1:])
    return shape, p.sequence_length


def render_table(doc: dict):
    """A rich Table of the rows (what the CLI prints)."""
    from rich.table import Table

    refs = doc.get("references", {})
    batch = doc["settings"]["batch"]
    table = Table(title=f"Runtimes at fp32, {doc['settings']['threads']} threads ({doc['machine']['cpu']})")
    for col, kw in [("variant", {}), ("runtime", {}), ("status", {}), ("p50 ms b1", {"justify": "right"}),
                    ("p90 ms b1", {"justify": "right"}), (f"fps b{batch}", {"justify": "right"})]:
        table.add_column(col, **kw)
    for key in refs:
        table.add_column(f"x{key} b1", justify="right")
        table.add_column(f"x{key} b{batch}", justify="right")
    table.add_column("max |diff|", justify="right")
    for r in (RuntimeBenchRow.from_json(row, "a bench runtimes row") for row in doc["rows"]):
        if not r.timed:
            table.add_row(r.name, r.runtime, f"[yellow]{r.status}[/]",
                          *[""] * (3 + 2 * len(refs)), "", end_section=False)
            continue
        cells = [r.name, r.runtime, "ok", f"{r.p50_ms_b1:.3f}", f"{r.latency_b1.p90_ms:.3f}", f"{r.throughput_fps:.0f}"]
        for key in refs:
            cells += [f"{getattr(r, f'speedup_b1_vs_{key}'):.2f}", f"{getattr(r, f'speedup_batch_vs_{key}'):.2f}"]
        cells.append(f"{r.max_abs_diff:.1e}" + ("" if r.agrees else " [red]![/]"))
        table.add_row(*cells)
    return table
