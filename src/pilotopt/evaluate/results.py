"""Result rows, results.json / results.csv (written atomically) and the terminal table.

results.json: {"schema": "pilotopt.results/1", "created", "machine", "protocol", "testset",
"variants": [row, ...]}; one row per variant:

    name, technique, framework, runtime, artifact, baseline, status, reason, cached
    size:        bytes, gzip_bytes, params, nonzero_params, params_source
    error:       n, mse_v, mse_w, mse_mean (normalized), mae_v_mps, mae_w_radps (physical)
    latency_ms:  model / brain_step: n, mean_ms, std_ms, p50_ms, p90_ms, p99_ms, min_ms, max_ms
    throughput:  batch, fps, calls, batch_p50_ms, batch_mean_ms
    memory_mb:   rss_before_load, peak_rss, model_share (peak - before: the runtime and model)
    cross_check: baseline, n, max_abs_diff, mse, ... speedup_p50, size_ratio (null without baseline)
    background_cpu: CPUs other processes used on average while the worker ran (timing context)

results.csv has the same numbers in flat columns (OFFLINE_COLUMNS: column -> path in the row)."""

from __future__ import annotations

import csv
import io
import os
import platform
import sys
from importlib import metadata
from pathlib import Path

from pilotopt import __version__
from pilotopt.atomic import write_json, write_text
from pilotopt.models import get_model_spec
from pilotopt.records import OFFLINE_SCHEMA, Device, OfflineRow, Produced, offline_rows

RESULTS_SCHEMA = OFFLINE_SCHEMA  # its "variants" are records.OfflineRow
RESULTS_JSON = "results.json"
RESULTS_CSV = "results.csv"

_LIBS = ("numpy", "torch", "tensorflow", "tf-keras", "ai-edge-litert", "onnxruntime", "openvino")
_STATS = ("n", "mean_ms", "std_ms", "p50_ms", "p90_ms", "p99_ms", "min_ms", "max_ms")


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(threads: int) -> dict:
    versions = {}
    for lib in _LIBS:
        try:
            versions[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            versions[lib] = None
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count()

    # host: where every latency of the run was measured (a Ray run builds and drives elsewhere)
    return {"python": sys.version.split()[0], "platform": platform.platform(), "host": platform.node(),
            "processor": cpu_model(),
            "machine": platform.machine(), "cpu_count": os.cpu_count(), "cpus_usable": usable,
            "threads": threads, "pilotopt": __version__, "libraries": versions}


INT8_HINTS = ("int8", "qat", "static", "dynamic", "prune_quant")


def precision_of(name: str, record: dict | None = None) -> str:
    """"int8" or "fp32": which peak a variant's rate is compared with (its record's `precision`
    when it states one, else its name: int8 / QAT / static / dynamic quantization)."""
    p = str((record or {}).get("precision") or "")
    if p in ("int8", "fp32", "fp16"):
        return "int8" if p == "int8" else "fp32"
    return "int8" if any(h in name for h in INT8_HINTS) else "fp32"


def variant_macs(record: dict | None, model: str | None = None) -> tuple[int | None, str]:
    """MACs per prediction of a variant and where the figure comes from: what a structure-changing
    step measured (channel pruning, distillation), else the architecture's own count (the
    pilotopt model registry); weight pruning and quantization leave the dense MACs unchanged."""
    rec = record or {}
    for key in ("macs_after", "student_macs", "macs"):
        if isinstance(rec.get(key), (int, float)) and rec[key] > 0:
            return int(rec[key]), f"record {key}"
    name = model or rec.get("model")
    if name:
        try:
            return int(get_model_spec(str(name)).macs), f"architecture {name}"
        except Exception:  # noqa: BLE001 - not a registered model
            pass
    return None, "unknown"


def base_row(variant, artifact: Path | None) -> dict:
    macs, macs_from = variant_macs(variant.record)
    steps = [{"technique": r.get("technique"), "size_bytes": done.size_bytes,
              "check_max_abs_diff": done.check_max_abs_diff}
             for r in variant.record.get("step_records") or [] for done in (Produced.of(r),)]
    return {"steps": list(variant.steps or [variant.name]), "step_sizes": steps,
            "precision": precision_of(variant.name, variant.record), "macs": macs, "macs_from": macs_from,
            "name": variant.name, "technique": variant.technique, "framework": variant.framework,
            "runtime": variant.runtime, "artifact": str(artifact) if artifact is not None else None,
            "baseline": variant.baseline, "status": variant.status, "reason": variant.reason, "cached": False,
            "contract": variant.contract, "arch": variant.arch, "arch_args": variant.arch_args,
            "size": {"bytes": None, "gzip_bytes": None, "params": None, "nonzero_params": None,
                     "params_source": None},
            "error": None, "latency_ms": None, "throughput": None, "memory_mb": None, "cross_check": None}


def _get(row: dict, *keys):
    for k in keys:
        if not isinstance(row, dict):
            return None
        row = row.get(k)
    return row


OFFLINE_COLUMNS: list[tuple[str, tuple[str, ...]]] = [
    ("name", ("name",)), ("technique", ("technique",)), ("framework", ("framework",)), ("runtime", ("runtime",)),
    ("status", ("status",)), ("reason", ("reason",)), ("baseline", ("baseline",)), ("cached", ("cached",)),
    ("size_bytes", ("size", "bytes")), ("gzip_bytes", ("size", "gzip_bytes")), ("params", ("size", "params")),
    ("nonzero_params", ("size", "nonzero_params")), ("params_source", ("size", "params_source")),
    ("frames", ("error", "n")), ("mse_v", ("error", "mse_v")), ("mse_w", ("error", "mse_w")),
    ("mse_mean", ("error", "mse_mean")), ("mae_v_mps", ("error", "mae_v_mps")),
    ("mae_w_radps", ("error", "mae_w_radps")),
    *[(f"latency_{s}", ("latency_ms", "model", s)) for s in _STATS],
    *[(f"brain_step_{s}", ("latency_ms", "brain_step", s)) for s in _STATS],
    ("throughput_batch", ("throughput", "batch")), ("throughput_fps", ("throughput", "fps")),
    ("throughput_batch_p50_ms", ("throughput", "batch_p50_ms")),
    ("rss_before_load_mb", ("memory_mb", "rss_before_load")), ("peak_rss_mb", ("memory_mb", "peak_rss")),
    ("model_rss_mb", ("memory_mb", "model_share")),
    ("xcheck_baseline", ("cross_check", "baseline")), ("xcheck_max_abs_diff", ("cross_check", "max_abs_diff")),
    ("xcheck_mse", ("cross_check", "mse")), ("speedup_vs_baseline", ("cross_check", "speedup_p50")),
    ("size_ratio_vs_baseline", ("cross_check", "size_ratio")),
    ("load_seconds", ("load_seconds",)), ("measure_seconds", ("measure_seconds",)),
    ("background_cpu", ("background_cpu",)),
    # the same variant on the target device (evaluate --target), beside this machine's figures
    ("target", ("on_target", "target")), ("target_status", ("on_target", "status")),
    ("target_reason", ("on_target", "reason")), ("target_device", ("on_target", "device", "hostname")),
    ("target_cpu", ("on_target", "device", "cpu")), ("target_machine", ("on_target", "device", "machine")),
    ("target_emulated", ("on_target", "device", "emulated")), ("target_runtime_version", ("on_target", "runtime_version")),
    ("target_threads", ("on_target", "threads")),
    *[(f"target_brain_step_{s}", ("on_target", "brain_step", s)) for s in ("n", "p50_ms", "p90_ms", "p99_ms", "mean_ms")],
    ("target_model_call_p50_ms", ("on_target", "model_call", "p50_ms")),
    ("target_check_max_abs_dv", ("on_target", "check", "max_abs_dv")),
    ("target_check_max_abs_dw", ("on_target", "check", "max_abs_dw")),
]


def flat_row(row: dict) -> dict:
    return {col: _get(row, *path) for col, path in OFFLINE_COLUMNS}


def to_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([c for c, _ in OFFLINE_COLUMNS])
    for row in rows:
        flat = flat_row(row)
        writer.writerow(["" if v is None else repr(v) if isinstance(v, float) else v for v in flat.values()])
    return buf.getvalue()


def write_results(out_dir: Path, doc: dict) -> tuple[Path, Path]:
    """results.json and results.csv; every row must be an OfflineRow (a field nobody declared fails
    here, in the stage that wrote it, not in a reader)."""
    out_dir = Path(out_dir)
    for row in doc["variants"]:
        OfflineRow.from_json(row, f"evaluate's row '{row.get('name')}'")
    write_json(out_dir / RESULTS_JSON, doc)
    write_text(out_dir / RESULTS_CSV, to_csv(doc["variants"]))
    return out_dir / RESULTS_JSON, out_dir / RESULTS_CSV


def make_table(doc: dict):
    """A rich Table of the results (method, status, size, error, latency, throughput, vs baseline)."""
    from rich.table import Table

    proto = doc.get("protocol", {})
    title = (f"offline evaluation: {doc.get('testset', {}).get('samples', '?')} test frames "
             f"({', '.join(doc.get('testset', {}).get('circuits', []))}), {proto.get('threads')} threads, batch 1")
    table = Table(title=title)
    cols = ("method", "runtime", "status", "size MB", "gzip MB", "params (nz)", "MSE v", "MSE w", "MSE mean",
            "p50 ms", "step p50 ms", f"fps @{proto.get('throughput_batch', '')}", "peak MB", "x vs base",
            "max|d| base")
    target = doc.get("target")
    if target:  # the device's brain step beside this machine's
        cols = (*cols, "target step p50 ms")
    for c in cols:
        table.add_column(c, justify="left" if c in ("method", "runtime", "status") else "right")

    def num(x, fmt):
        return "-" if x is None else format(x, fmt)

    for r in offline_rows(doc):
        size, err, lat, tp, mem, xc = r.size, r.error, r.latency_ms, r.throughput, r.memory_mb, r.cross_check
        method = r.name + (f" [dim]({r.technique})[/]" if r.technique else "")
        status = {"ok": "[green]ok[/]", "failed": "[red]failed[/]", "skipped": "[yellow]skipped[/]"}.get(
            r.status, r.status) + (" (cached)" if r.cached else "")
        params = "-"
        if size.params is not None:
            nz = size.nonzero_params
            params = f"{size.params:,}" + (f" ({nz / size.params:.0%})" if nz is not None and size.params else "")
        table.add_row(
            method, r.runtime or "-", status,
            num(None if size.bytes is None else size.bytes / 1e6, ".3f"),
            num(None if size.gzip_bytes is None else size.gzip_bytes / 1e6, ".3f"),
            params, num(err and err.mse_v, ".5f"), num(err and err.mse_w, ".5f"), num(err and err.mse_mean, ".5f"),
            num(r.p50_ms, ".3f"), num(lat.brain_step.p50_ms if lat and lat.brain_step else None, ".3f"),
            num(tp and tp.fps, ",.0f"), num(mem and mem.peak_rss, ".0f"),
            "-" if xc is None or xc.speedup_p50 is None else f"{xc.speedup_p50:.2f}x",
            num(xc and xc.max_abs_diff, ".2e"),
            *([_on_target_cell(r)] if target else []),
        )
    if target:
        table.caption = f"target: {target['spec']}, {Device.from_json(target['device']).text()}, {target['threads']} thread(s)"
    return table


def _on_target_cell(r: OfflineRow) -> str:
    t = r.on_target
    if t is None:
        return "-"
    return f"{t.p50_ms:.3f}" if t.ok and t.p50_ms is not None else f"[yellow]{t.status}[/]"


BUSY_CPU = 0.25  # other processes using more than this many CPUs on average: timings are suspect


def reasons(doc: dict) -> list[str]:
    """Notes to print under the table: why variants failed or were skipped, and busy-machine warnings."""
    rows = offline_rows(doc)
    lines = [f"{r.name}: {r.status}: {r.reason}" for r in rows if r.status != "ok" and r.reason]
    lines += [f"{r.name}: {r.on_target.reason}" for r in rows if r.on_target and not r.on_target.ok and r.on_target.reason]
    lines += [f"{r.name}: on {r.on_target.target} its commands differ from this machine's by up to "
              f"{max(r.on_target.check.max_abs_dv, r.on_target.check.max_abs_dw):.3g} (tolerance "
              f"{r.on_target.check.tolerance:.3g})" for r in rows
              if r.on_target and r.on_target.check and not r.on_target.check.ok]
    busy = [f"{r.name} ({r.background_cpu:.2f})" for r in rows if (r.background_cpu or 0) > BUSY_CPU]
    if busy:
        lines.append(f"note: other processes kept CPUs busy while measuring {', '.join(busy)} (average CPUs "
                     "in use); their latency may be inflated: rerun on an idle machine with --force")
    return lines
