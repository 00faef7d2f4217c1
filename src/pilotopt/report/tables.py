"""The rows every report output shares (results.json, results.csv, report.md, report.html).

The figures come decided (`pilotopt.decide`: one `VariantSummary` per variant); here they become
display rows so each renderer shows the same numbers:

- `closed_loop_rows(drives)`: one flat row per drive (variant, circuit, direction).
- `technique_rows(techniques, variants)`: every technique asked for with its status and what became
  of its variant, so techniques that never reached evaluation still appear.

A `Table` is columns + raw-valued rows; formatting happens only at render time (`Column.format`),
so the CSV/JSON keep full precision while the documents stay readable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from pilotopt.decide.summary import FRAMEWORK_LABELS, NULL, finite, one_line, status_text
from pilotopt.errors import BadInputError
from pilotopt.records import Drive, VariantSummary

STATUSES = ("ok", "failed", "skipped")


# ----------------------------------------------------------------------------- table model
@dataclass(frozen=True)
class Column:
    """One table column: `key` into the row dict, a header `label`, and a format spec for numbers
    (None: the value is text). `scale` divides numbers before formatting (bytes -> MB)."""

    key: str
    label: str
    fmt: str | None = None
    scale: float = 1.0

    @property
    def numeric(self) -> bool:
        return self.fmt is not None

    def value(self, row) -> Any:
        """The raw sortable value (scaled number, text, or None)."""
        v = field_of(row, self.key)
        if v is None:
            return None
        if self.numeric:
            if isinstance(v, bool):
                return float(v)
            x = float(v)
            return None if not math.isfinite(x) else x / self.scale
        return v

    def format(self, row) -> str:
        v = self.value(row)
        if v is None:
            return NULL
        if self.numeric:
            return format(v, self.fmt)
        if isinstance(v, bool):
            return "yes" if v else "no"
        return str(v)


def field_of(row, name: str) -> Any:
    """A column's value: a record's field (a typed variant), or a display row's entry (a drive,
    a technique, a setting)."""
    return row.get(name) if isinstance(row, dict) else getattr(row, name)


@dataclass
class Table:
    """Columns and rows; `table_id` names the table in HTML (tests and sorting find it by id)."""

    table_id: str
    columns: list[Column]
    rows: list[dict]
    caption: str = ""
    notes: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------- input checks
def check_techniques(techniques: Any) -> list[dict]:
    if techniques is None:
        return []
    if not isinstance(techniques, list):
        raise BadInputError(f"techniques must be a list, got {type(techniques).__name__}")
    for i, t in enumerate(techniques):
        if not isinstance(t, dict) or not t.get("name"):
            raise BadInputError(f"technique {i} has no 'name'")
        if t.get("status") not in STATUSES:
            raise BadInputError(f"technique '{t['name']}' has status {t.get('status')!r}; use ok, failed or skipped")
    return list(techniques)


# ----------------------------------------------------------------------------- rows
def closed_loop_rows(drives: list[Drive]) -> list[dict]:
    """One display row per drive, in input order."""
    rows = []
    for d in drives:
        m = d.metrics if d.status == "ok" else None
        fig = (lambda name: getattr(m, name) if m is not None else None)  # noqa: E731
        rows.append({
            "variant": d.variant, "framework": d.framework, "circuit": d.circuit, "direction": d.direction,
            "condition": d.condition, "repetition": d.repetition, "status": d.status, "reason": d.reason,
            "status_text": status_text(d.status, d.reason), "lap_completed": d.clean_lap,
            **{name: finite(fig(name)) for name in DRIVE_FIGURES},
            "termination": fig("termination"), "driving_score": d.score, "latency_source": fig("latency_source"),
            # from the drive record (the parsed condition x the run's scale), never from the condition's name
            "latency_scale_applied": d.latency_scale_applied, "condition_latency_scale": d.condition_latency_scale,
            "slowdown_only": d.slowdown_only, "plot": d.plot, "video": d.video,
        })
    return rows


DRIVE_FIGURES = ("percentage_completed", "laps_completed", "lap_seconds", "average_speed", "position_deviation_mae",
                 "position_deviation_max", "brain_iterations_frequency", "mean_inference_time",
                 "mean_brain_step_time", "real_time_factor", "deadline_misses", "interventions", "autonomy",
                 "bm_position_deviation")


def technique_rows(techniques: list[dict], variants: list[VariantSummary]) -> list[dict]:
    """Every technique asked for, with its own status and its evaluated variant(s), if any."""
    rows = []
    for t in techniques:
        fw = t.get("framework")
        mine = [v for v in variants if (v.technique or v.name) == t["name"]
                and (not fw or not v.framework or v.framework == fw)]
        if mine:
            evaluation = "; ".join((f"{v.name}: " if v.name != t["name"] else "") + v.status_text for v in mine)
            cl = "; ".join(v.cl_text for v in mine)
        else:
            evaluation = "not evaluated" if t["status"] == "ok" else NULL
            cl = NULL
        rows.append({
            "name": t["name"], "framework": fw, "framework_label": FRAMEWORK_LABELS.get(fw, fw),
            "status": t["status"], "reason": t.get("reason"),
            "status_text": status_text(t["status"], t.get("reason"), limit=None),
            "description": one_line(t.get("description") or "", limit=None),
            "evaluation": evaluation, "closed_loop": cl,
        })
    return rows


# ----------------------------------------------------------------------------- CSV columns
CSV_COLUMNS = (
    "name", "technique", "framework", "runtime", "baseline", "status", "reason",
    "size_bytes", "size_mb", "gzip_bytes", "params", "nonzero_params",
    "mse_mean", "mse_v", "mse_w", "mae_v_mps", "mae_w_radps",
    "latency_p50_ms", "latency_p90_ms", "brain_step_p50_ms", "throughput_fps",
    "speedup_vs_baseline", "size_ratio_vs_baseline", "precision", "macs", "gmacs_per_s", "peak_share",
    "cl_circuits_completed", "cl_circuits_total", "cl_runs_completed", "cl_runs_total",
    "cl_mean_average_speed", "cl_mean_position_deviation_mae", "cl_mean_brain_frequency_hz",
    "cl_mean_inference_ms", "cl_mean_real_time_factor",
    "cl_score_mean", "cl_score_lo", "cl_score_hi", "cl_autonomy_mean", "cl_autonomy_lo", "cl_autonomy_hi",
    "cl_deviation_mean", "cl_deviation_lo", "cl_deviation_hi", "cl_mean_bm_position_deviation",
    "cl_mean_interventions", "cl_max_slow",
    "pareto_latency_mse", "pareto_size_mse", "eligible", "violations", "recommended",
)


# ----------------------------------------------------------------------------- display tables
def offline_table(rows: list[VariantSummary], framework: str, table_id: str) -> Table:
    """The study's table form: method, size, MSE, inference time, framework (+ status)."""
    cols = [
        Column("name", "Method"), Column("runtime", "Runtime"),
        Column("size_bytes", "Size (MB)", ".3f", 1e6), Column("gzip_bytes", "gzip (MB)", ".3f", 1e6),
        Column("mse_mean", "MSE", ".5g"), Column("mae_v_mps", "MAE v (m/s)", ".4f"),
        Column("mae_w_radps", "MAE w (rad/s)", ".4f"),
        Column("latency_p50_ms", "Inference time p50 (ms)", ".3f"),
        Column("speedup_vs_baseline", "Speed-up vs baseline", ".2f"),
        Column("macs", "MMACs", ".1f", 1e6), Column("gmacs_per_s", "GMAC/s", ".1f"),
        Column("peak_share", "% of peak", ".0%"), Column("precision", "Precision"),
        Column("framework_label", "Framework"), Column("status_text", "Status"),
    ]
    mine = [r for r in rows if r.in_offline and (r.framework or "") == framework]
    label = FRAMEWORK_LABELS.get(framework, framework or "unknown framework")
    return Table(table_id, cols, mine, caption=f"Offline evaluation: {label}")


def summary_table(rows: list[VariantSummary]) -> Table:
    cols = [
        Column("name", "Method"), Column("framework_label", "Framework"), Column("status", "Status"),
        Column("size_bytes", "Size (MB)", ".3f", 1e6), Column("mse_mean", "MSE", ".5g"),
        Column("latency_p50_ms", "Inference p50 (ms)", ".3f"),
        Column("cl_runs_completed", "Laps completed", ".0f"), Column("cl_runs_total", "Drives", ".0f"),
        Column("cl_mean_average_speed", "Mean speed (m/s)", ".2f"),
        Column("cl_mean_position_deviation_mae", "Mean deviation (m)", ".3f"),
        Column("cl_mean_brain_frequency_hz", "Mean brain freq. (Hz)", ".1f"),
        Column("cl_mean_real_time_factor", "Mean RTF", ".2f"),
        Column("eligible", "Meets constraints"),
    ]
    return Table("summary", cols, rows, caption="All variants: offline numbers and closed-loop means")


def circuit_table(cl_rows: list[dict], circuit: str, table_id: str) -> Table:
    cols = [
        Column("variant", "Method"), Column("direction", "Direction"), Column("framework_label", "Framework"),
        Column("average_speed", "Average speed (m/s)", ".2f"),
        Column("position_deviation_mae", "Position deviation MAE (m)", ".3f"),
        Column("brain_iterations_frequency", "Brain iteration frequency (Hz)", ".1f"),
        Column("mean_inference_time", "Mean inference time (ms)", ".3f"),
        Column("real_time_factor", "Real-time factor", ".2f"),
        Column("percentage_completed", "Completed (%)", ".1f"),
        Column("lap_completed", "Lap completed"), Column("status_text", "Status"),
    ]
    rows = [dict(r, framework_label=FRAMEWORK_LABELS.get(r["framework"], r["framework"]))
            for r in cl_rows if r["circuit"] == circuit]
    return Table(table_id, cols, rows, caption=f"Closed loop: {circuit}")


def technique_table(rows: list[dict]) -> Table:
    cols = [Column("name", "Technique"), Column("framework_label", "Framework"),
            Column("status_text", "Status"), Column("evaluation", "Offline evaluation"),
            Column("closed_loop", "Laps completed / drives"), Column("description", "Description")]
    return Table("techniques", cols, rows, caption="Every technique asked for")


def chain_table(rows: list[VariantSummary]) -> Table | None:
    """Variants made by chains: their steps and what each step left (size), with the result's MSE
    and latency."""
    chained = []
    for r in rows:
        if len(r.steps) < 2:
            continue
        sizes = [s.size_bytes for s in r.step_sizes]
        chained.append({"name": r.name, "mse_mean": r.mse_mean, "latency_p50_ms": r.latency_p50_ms,
                        "cl_text": r.cl_text, "steps_text": " → ".join(r.steps),
                        "sizes_text": " → ".join(NULL if b is None else f"{b / 1e6:.2f}" for b in sizes) or NULL})
    if not chained:
        return None
    cols = [Column("name", "Variant"), Column("steps_text", "Steps"), Column("sizes_text", "Size after each step (MB)"),
            Column("mse_mean", "MSE", ".5f"), Column("latency_p50_ms", "p50 ms", ".3f"), Column("cl_text", "Laps")]
    return Table("chains", cols, chained, caption="Variants made by chains of techniques")


# the fp32 variant in each runtime an int8 variant is timed against, and why int8 can be slower there
FP32_IN_RUNTIME = {"litert": "tflite_fp32", "onnxruntime": "onnx_fp32", "openvino": "openvino_fp32",
                   "executorch": "executorch_fp32", "torch_export": "torch_export", "torch": "torch"}
SLOWER_INT8_REASONS = {
    "torch_export": "PT2E int8 programs run quantize/dequantize ops in fp32 around fp32 kernels outside inductor; "
                    "the executorch backend of torch_static / torch_qat runs int8 kernels",
    "onnxruntime": "dynamic quantization computes activation scales on every call; onnx_int8_static does not",
}


def slower_int8(rows: list[VariantSummary]) -> list[str]:
    """One line per int8 variant slower than the fp32 variant of its framework in the same runtime."""
    out = []
    fp32 = {(r.framework, r.name): r for r in rows}
    for r in rows:
        ref_name = FP32_IN_RUNTIME.get(r.runtime or "")
        ref = fp32.get((r.framework, ref_name)) if ref_name else None
        if (r.precision != "int8" or ref is None or ref is r or r.latency_p50_ms is None
                or ref.latency_p50_ms is None or r.latency_p50_ms <= ref.latency_p50_ms):
            continue
        why = SLOWER_INT8_REASONS.get(r.runtime, "the runtime has no faster int8 kernels for these layers")
        out.append(f"{r.name} (int8) is slower than {ref_name} in {r.runtime}: "
                   f"{r.latency_p50_ms:.3f} ms vs {ref.latency_p50_ms:.3f} ms ({why}).")
    return out


def meta_table(meta: dict | None) -> Table:
    """Meta flattened to dotted keys (sorted) so nested config stays a two-column table."""
    rows: list[dict] = []

    def walk(prefix: str, v: Any) -> None:
        if isinstance(v, dict) and v:
            for k in sorted(v, key=str):
                walk(f"{prefix}.{k}" if prefix else str(k), v[k])
        else:
            if isinstance(v, (list, tuple)):
                v = ", ".join(str(x) for x in v)
            rows.append({"key": prefix, "value": NULL if v is None else one_line(v, limit=500)})

    walk("", meta or {})
    return Table("meta", [Column("key", "Setting"), Column("value", "Value")], rows, caption="Run information")
