"""The rows every report output shares (results.json, results.csv, report.md, report.html).

Inputs are normalised once here so each renderer shows the same numbers:

- `variant_rows(offline, closed_loop)`: one flat row per variant (offline numbers + closed-loop
  aggregates), keyed by (framework, name) so a tf and a torch variant may share a name.
- `closed_loop_rows(closed_loop)`: one flat row per drive (variant, circuit, direction).
- `technique_rows(techniques, variants)`: every technique asked for with its status and what became
  of its variant, so techniques that never reached evaluation still appear.

A `Table` is columns + raw-valued rows; formatting happens only at render time (`Column.format`),
so the CSV/JSON keep full precision while the documents stay readable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable

from pilotopt.errors import BadInputError
from pilotopt.report.stats import bootstrap_ci

OFFLINE_SCHEMA = "pilotopt.results/1"
STATUSES = ("ok", "failed", "skipped")
DIRECTIONS = ("anticlockwise", "clockwise")
FRAMEWORK_LABELS = {"tf": "TensorFlow", "torch": "PyTorch"}
NULL = "-"  # how a missing number is shown
MAX_REASON_CHARS = 300  # reasons in table cells are cut here; the techniques list shows them whole


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

    def value(self, row: dict) -> Any:
        """The raw sortable value (scaled number, text, or None)."""
        v = row.get(self.key)
        if v is None:
            return None
        if self.numeric:
            if isinstance(v, bool):
                return float(v)
            x = float(v)
            return None if not math.isfinite(x) else x / self.scale
        return v

    def format(self, row: dict) -> str:
        v = self.value(row)
        if v is None:
            return NULL
        if self.numeric:
            return format(v, self.fmt)
        if isinstance(v, bool):
            return "yes" if v else "no"
        return str(v)


@dataclass
class Table:
    """Columns and rows; `table_id` names the table in HTML (tests and sorting find it by id)."""

    table_id: str
    columns: list[Column]
    rows: list[dict]
    caption: str = ""
    notes: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------- helpers
def get(d: Any, *keys: str) -> Any:
    """Nested lookup that tolerates missing levels and nulls."""
    for k in keys:
        if not isinstance(d, dict):
            return None
        d = d.get(k)
    return d


def num(x: Any) -> float | int | None:
    """A finite number or None (NaN/inf and non-numbers become None: they cannot be ranked)."""
    if x is None or isinstance(x, bool):
        return None
    if isinstance(x, int):
        return x  # counts and byte sizes stay integers in the CSV/JSON
    try:
        f = float(x)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def mean(values: Iterable[Any]) -> float | None:
    xs = [v for v in (num(x) for x in values) if v is not None]
    return sum(xs) / len(xs) if xs else None


def one_line(text: Any, limit: int | None = MAX_REASON_CHARS) -> str:
    """Collapse whitespace (tracebacks span lines) and cut to `limit` characters."""
    s = " ".join(str(text).split())
    if limit is not None and len(s) > limit:
        s = s[: limit - 3].rstrip() + "..."
    return s


def status_text(status: str | None, reason: Any, limit: int | None = MAX_REASON_CHARS) -> str:
    """'ok', 'failed (reason)', 'skipped (reason)': the study's status cell."""
    status = status or "unknown"
    if status == "ok" or not reason:
        return status
    return f"{status} ({one_line(reason, limit)})"


def key_of(framework: Any, name: Any) -> tuple[str, str]:
    return (str(framework or ""), str(name))


# ----------------------------------------------------------------------------- input checks
def offline_rows(offline: Any) -> list[dict]:
    """The variant rows of an offline results document (dict with schema pilotopt.results/1), a bare
    list of rows, or None (no offline evaluation)."""
    if offline is None:
        return []
    if isinstance(offline, dict):
        schema = offline.get("schema")
        if schema is not None and schema != OFFLINE_SCHEMA:
            raise BadInputError(f"offline results have schema '{schema}', expected '{OFFLINE_SCHEMA}'")
        rows = offline.get("variants")
        if rows is None:
            raise BadInputError("offline results have no 'variants' list; pass a pilotopt.results/1 document")
    elif isinstance(offline, list):
        rows = offline
    else:
        raise BadInputError(f"offline results must be a dict or a list, got {type(offline).__name__}")
    seen = set()
    for i, r in enumerate(rows):
        if not isinstance(r, dict) or not r.get("name"):
            raise BadInputError(f"offline row {i} has no 'name'")
        if r.get("status") not in STATUSES:
            raise BadInputError(f"offline row '{r['name']}' has status {r.get('status')!r}; use ok, failed or skipped")
        k = key_of(r.get("framework"), r["name"])
        if k in seen:
            raise BadInputError(f"offline variant '{r['name']}' ({r.get('framework')}) appears twice")
        seen.add(k)
    return list(rows)


def check_closed_loop(closed_loop: Any) -> list[dict]:
    if closed_loop is None:
        return []
    if not isinstance(closed_loop, list):
        raise BadInputError(f"closed-loop results must be a list of drives, got {type(closed_loop).__name__}")
    for i, r in enumerate(closed_loop):
        if not isinstance(r, dict) or not r.get("variant") or not r.get("circuit"):
            raise BadInputError(f"closed-loop drive {i} needs 'variant' and 'circuit'")
        if r.get("status") not in STATUSES:
            raise BadInputError(f"closed-loop drive {i} ({r['variant']} on {r['circuit']}) has status "
                                f"{r.get('status')!r}; use ok, failed or skipped")
    return list(closed_loop)


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
def drive_completed(drive: dict) -> bool:
    """A clean lap: the lap completed with no intervention (a lap that needed the safety driver's
    help is not one the model drove)."""
    return (drive.get("status") == "ok" and bool(get(drive, "metrics", "lap_completed"))
            and not (get(drive, "metrics", "interventions") or 0))


DEFAULT_CONDITION = "default"


def condition_of(drive: dict) -> str:
    return drive.get("condition") or get(drive, "metrics", "condition") or DEFAULT_CONDITION


def cell_of(drive: dict) -> tuple[str, str, str]:
    """(condition, circuit, direction) of a flat drive row: one cell of the condition gate."""
    return (drive.get("condition") or DEFAULT_CONDITION, drive.get("circuit") or "", drive.get("direction") or "")


def cell_key(condition: str, circuit: str, direction: str) -> str:
    return f"{condition}|{circuit}|{direction}"


def closed_loop_rows(closed_loop: list[dict]) -> list[dict]:
    """One flat row per drive, in input order."""
    rows = []
    for d in closed_loop:
        m = d.get("metrics") if d.get("status") == "ok" else None
        m = m or {}
        rows.append({
            "variant": d["variant"], "framework": d.get("framework"), "circuit": d["circuit"],
            "direction": d.get("direction"), "condition": condition_of(d),
            "repetition": int(d.get("repetition") or 0), "status": d.get("status"), "reason": d.get("reason"),
            "status_text": status_text(d.get("status"), d.get("reason")),
            "lap_completed": drive_completed(d),
            "percentage_completed": num(m.get("percentage_completed")),
            "laps_completed": num(m.get("laps_completed")),
            "lap_seconds": num(m.get("lap_seconds")),
            "average_speed": num(m.get("average_speed")),
            "position_deviation_mae": num(m.get("position_deviation_mae")),
            "position_deviation_max": num(m.get("position_deviation_max")),
            "brain_iterations_frequency": num(m.get("brain_iterations_frequency")),
            "mean_inference_time": num(m.get("mean_inference_time")),
            "mean_brain_step_time": num(m.get("mean_brain_step_time")),
            "real_time_factor": num(m.get("real_time_factor")),
            "deadline_misses": num(m.get("deadline_misses")),
            "termination": m.get("termination"),
            "interventions": num(m.get("interventions")), "autonomy": num(m.get("autonomy")),
            "driving_score": num(m.get("driving_score")) if d.get("status") == "ok" else 0.0,
            "bm_position_deviation": num(m.get("bm_position_deviation")),
            "latency_source": m.get("latency_source"),
            # from the drive record (the parsed condition x the run's scale), never from the condition's name
            "latency_scale_applied": num(d.get("latency_scale_applied")),
            "condition_latency_scale": num(d.get("condition_latency_scale")),
            "slowdown_only": bool(d.get("slowdown_only")),
            "plot": d.get("plot"), "video": d.get("video"),
        })
    return rows


def _offline_flat(r: dict) -> dict:
    size_bytes = num(get(r, "size", "bytes"))
    return {
        "name": r["name"], "in_offline": True, "technique": r.get("technique"), "framework": r.get("framework"),
        "framework_label": FRAMEWORK_LABELS.get(r.get("framework"), r.get("framework")),
        "runtime": r.get("runtime"), "baseline": r.get("baseline"), "status": r.get("status"),
        "reason": r.get("reason"), "status_text": status_text(r.get("status"), r.get("reason")),
        "size_bytes": size_bytes, "size_mb": None if size_bytes is None else size_bytes / 1e6,
        "gzip_bytes": num(get(r, "size", "gzip_bytes")), "params": num(get(r, "size", "params")),
        "nonzero_params": num(get(r, "size", "nonzero_params")),
        "mse_mean": num(get(r, "error", "mse_mean")), "mse_v": num(get(r, "error", "mse_v")),
        "mse_w": num(get(r, "error", "mse_w")), "mae_v_mps": num(get(r, "error", "mae_v_mps")),
        "mae_w_radps": num(get(r, "error", "mae_w_radps")),
        "latency_p50_ms": num(get(r, "latency_ms", "model", "p50_ms")),
        "latency_p90_ms": num(get(r, "latency_ms", "model", "p90_ms")),
        "brain_step_p50_ms": num(get(r, "latency_ms", "brain_step", "p50_ms")),
        "throughput_fps": num(get(r, "throughput", "fps")),
        "speedup_vs_baseline": num(get(r, "cross_check", "speedup_p50")),
        "size_ratio_vs_baseline": num(get(r, "cross_check", "size_ratio")),
        "steps": list(r.get("steps") or [r["name"]]), "step_sizes": list(r.get("step_sizes") or []),
        "precision": r.get("precision"), "macs": num(r.get("macs")),
        "gmacs_per_s": _gmacs(num(r.get("macs")), num(get(r, "latency_ms", "model", "p50_ms"))),
    }


def _gmacs(macs, p50_ms):
    """Achieved GMAC/s at batch 1 (`pilotopt bench machine` gives the machine's peaks to compare)."""
    return None if not macs or not p50_ms else macs / (p50_ms / 1e3) / 1e9


_EMPTY_OFFLINE = {k: None for k in _offline_flat({"name": ""})}


def _ci_fields(prefix: str, values) -> dict:
    ci = bootstrap_ci(list(values))
    return {f"{prefix}_mean": ci[0] if ci else None, f"{prefix}_lo": ci[1] if ci else None,
            f"{prefix}_hi": ci[2] if ci else None}


def _closed_loop_aggregate(drives: list[dict]) -> dict:
    """Aggregates over one variant's drives in the default condition (the study's figures: a
    circuit counts as completed when every drive on it completed a clean lap; means are over drives
    that ran), with 95 % bootstrap intervals over the repetitions for the score, autonomy and
    deviation; and per condition the score with its interval. A failed drive scores 0."""
    default = [d for d in drives if d.get("condition", DEFAULT_CONDITION) == DEFAULT_CONDITION]
    ok = [d for d in default if d["status"] == "ok"]
    circuits: dict[str, bool] = {}
    for d in default:
        circuits[d["circuit"]] = circuits.get(d["circuit"], True) and d["lap_completed"]
    per_condition: dict[str, dict] = {}
    for cond in dict.fromkeys(d.get("condition", DEFAULT_CONDITION) for d in drives):
        mine = [d for d in drives if d.get("condition", DEFAULT_CONDITION) == cond]
        per_condition[cond] = {**_ci_fields("score", (d["driving_score"] for d in mine)), "n": len(mine),
                               "clean": sum(1 for d in mine if d["lap_completed"])}
    cells: dict[str, dict] = {}  # every (condition, circuit, direction) driven: what the condition gate reads
    for cell in dict.fromkeys(cell_of(d) for d in drives):
        mine = [d for d in drives if cell_of(d) == cell]
        cond, circuit, direction = cell
        cells[cell_key(*cell)] = {"condition": cond, "circuit": circuit, "direction": direction,
                                  **_ci_fields("score", (d["driving_score"] for d in mine)), "n": len(mine),
                                  "clean": sum(1 for d in mine if d["lap_completed"])}
    applied = {d.get("condition", DEFAULT_CONDITION): d.get("latency_scale_applied") for d in drives
               if d.get("slowdown_only") and d.get("latency_scale_applied") is not None}
    scales = sorted((applied[c], v) for c, v in per_condition.items() if c in applied)
    max_scale = None
    for scale, v in scales:  # the largest tested slow-down under which every lap is clean, no gap below
        if v["n"] and v["clean"] == v["n"]:
            max_scale = scale
        else:
            break
    return {
        "cl_runs_total": len(default),
        "cl_runs_completed": sum(1 for d in default if d["lap_completed"]),
        "cl_circuits_total": len(circuits),
        "cl_circuits_completed": sum(1 for v in circuits.values() if v),
        "cl_all_completed": bool(default) and all(d["lap_completed"] for d in default),
        "cl_mean_average_speed": mean(d["average_speed"] for d in ok),
        "cl_mean_position_deviation_mae": mean(d["position_deviation_mae"] for d in ok),
        "cl_mean_brain_frequency_hz": mean(d["brain_iterations_frequency"] for d in ok),
        "cl_mean_inference_ms": mean(d["mean_inference_time"] for d in ok),
        "cl_mean_real_time_factor": mean(d["real_time_factor"] for d in ok),
        "cl_mean_bm_position_deviation": mean(d["bm_position_deviation"] for d in ok),
        "cl_mean_interventions": mean(d["interventions"] for d in ok),
        **(_ci_fields("cl_score", (d["driving_score"] for d in default)) if default else
           {"cl_score_mean": None, "cl_score_lo": None, "cl_score_hi": None}),
        **_ci_fields("cl_autonomy", (d["autonomy"] for d in ok)),
        **_ci_fields("cl_deviation", (d["position_deviation_mae"] for d in ok)),
        "cl_conditions": per_condition if drives else {},
        "cl_cells": cells,
        "cl_max_slow": max_scale if len(scales) > 1 else None,
        "cl_slow_tested": max((s for s, _ in scales), default=None),
    }


def variant_rows(offline: list[dict], cl_rows: list[dict]) -> list[dict]:
    """One row per variant: offline rows in their order, then variants seen only in closed loop."""
    by_key: dict[tuple[str, str], dict] = {}
    for r in offline:
        by_key[key_of(r.get("framework"), r["name"])] = _offline_flat(r)
    drives: dict[tuple[str, str], list[dict]] = {}
    for d in cl_rows:
        k = key_of(d["framework"], d["variant"])
        if k not in by_key:
            # a drive that names no framework still matches a unique offline variant of that name
            same_name = [kk for kk in by_key if kk[1] == d["variant"] and not d["framework"]]
            if len(same_name) == 1:
                k = same_name[0]
            else:
                row = dict(_EMPTY_OFFLINE, name=d["variant"], in_offline=False, framework=d["framework"],
                           framework_label=FRAMEWORK_LABELS.get(d["framework"], d["framework"]),
                           status="skipped", reason="not evaluated offline",
                           status_text=status_text("skipped", "not evaluated offline"))
                by_key[k] = row
        drives.setdefault(k, []).append(d)
    # weight pruning and quantization keep the baseline's MACs; a step that changes the structure
    # (channel pruning, distillation) records its own, which a chain's record carries
    for (fw, _), row in by_key.items():
        base = by_key.get(key_of(fw, row.get("baseline")))
        if row.get("macs") is None and base is not None and base.get("macs"):
            row["macs"] = base["macs"]
            row["gmacs_per_s"] = _gmacs(row["macs"], row.get("latency_p50_ms"))
    rows = []
    for k, row in by_key.items():
        row = dict(row, key=f"{k[0]}/{k[1]}")
        row.update(_closed_loop_aggregate(drives.get(k, [])))
        row["cl_text"] = (f"{row['cl_runs_completed']}/{row['cl_runs_total']}" if row["cl_runs_total"] else NULL)
        rows.append(row)
    return rows


def technique_rows(techniques: list[dict], variants: list[dict]) -> list[dict]:
    """Every technique asked for, with its own status and its evaluated variant(s), if any."""
    rows = []
    for t in techniques:
        fw = t.get("framework")
        mine = [v for v in variants if (v.get("technique") or v["name"]) == t["name"]
                and (not fw or not v.get("framework") or v["framework"] == fw)]
        if mine:
            evaluation = "; ".join(
                (f"{v['name']}: " if v["name"] != t["name"] else "") + v["status_text"] for v in mine)
            cl = "; ".join(v["cl_text"] for v in mine)
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
def offline_table(rows: list[dict], framework: str, table_id: str) -> Table:
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
    mine = [r for r in rows if r["in_offline"] and (r.get("framework") or "") == framework]
    label = FRAMEWORK_LABELS.get(framework, framework or "unknown framework")
    return Table(table_id, cols, mine, caption=f"Offline evaluation: {label}")


def summary_table(rows: list[dict]) -> Table:
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


def chain_table(rows: list[dict]) -> Table | None:
    """Variants made by chains: their steps and what each step left (size), with the result's MSE
    and latency."""
    chained = []
    for r in rows:
        steps = r.get("steps") or []
        if len(steps) < 2:
            continue
        sizes = [s.get("size_bytes") for s in r.get("step_sizes") or []]
        chained.append({**r, "steps_text": " → ".join(steps),
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


def slower_int8(rows: list[dict]) -> list[str]:
    """One line per int8 variant slower than the fp32 variant of its framework in the same runtime."""
    out = []
    fp32 = {(r.get("framework"), r["name"]): r for r in rows}
    for r in rows:
        ref_name = FP32_IN_RUNTIME.get(r.get("runtime") or "")
        ref = fp32.get((r.get("framework"), ref_name)) if ref_name else None
        if (r.get("precision") != "int8" or ref is None or ref is r or r.get("latency_p50_ms") is None
                or ref.get("latency_p50_ms") is None or r["latency_p50_ms"] <= ref["latency_p50_ms"]):
            continue
        why = SLOWER_INT8_REASONS.get(r["runtime"], "the runtime has no faster int8 kernels for these layers")
        out.append(f"{r['name']} (int8) is slower than {ref_name} in {r['runtime']}: "
                   f"{r['latency_p50_ms']:.3f} ms vs {ref['latency_p50_ms']:.3f} ms ({why}).")
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
