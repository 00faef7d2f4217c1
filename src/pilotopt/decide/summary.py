"""Offline rows and drives -> one `VariantSummary` per variant: the figures the decision reads.

A variant's closed-loop figures are aggregates over its drives in the default condition (a circuit
counts as completed when every drive on it completed a clean lap; means are over the drives that
ran; a failed drive scores 0), with 95 % bootstrap intervals over the repetitions for the score,
autonomy and deviation; and, per condition and per (condition, circuit, direction) cell, the score
with its interval and the clean laps: what the condition gate compares."""

from __future__ import annotations

import math
from typing import Iterable

from pilotopt.decide.stats import bootstrap_ci
from pilotopt.records import (DEFAULT_CONDITION, ConditionScore, Drive, OfflineRow, ScoreCell, VariantSummary,
                              variant_key)

FRAMEWORK_LABELS = {"tf": "TensorFlow", "torch": "PyTorch"}
NULL = "-"  # how a missing figure is shown
MAX_REASON_CHARS = 300  # reasons in table cells are cut here; the techniques list shows them whole


def one_line(text, limit: int | None = MAX_REASON_CHARS) -> str:
    """Collapse whitespace (tracebacks span lines) and cut to `limit` characters."""
    s = " ".join(str(text).split())
    if limit is not None and len(s) > limit:
        s = s[: limit - 3].rstrip() + "..."
    return s


def status_text(status: str | None, reason, limit: int | None = MAX_REASON_CHARS) -> str:
    """'ok', 'failed (reason)', 'skipped (reason)': the study's status cell."""
    status = status or "unknown"
    if status == "ok" or not reason:
        return status
    return f"{status} ({one_line(reason, limit)})"


def finite(x) -> float | None:
    """x when it is a finite number, else None (NaN / inf cannot be ranked)."""
    if x is None or isinstance(x, bool):
        return None
    return x if math.isfinite(float(x)) else None


def mean(values: Iterable) -> float | None:
    xs = [v for v in (finite(x) for x in values) if v is not None]
    return sum(xs) / len(xs) if xs else None


def gmacs(macs, p50_ms) -> float | None:
    """Achieved GMAC/s at batch 1 (`pilotopt bench machine` gives the machine's peaks to compare)."""
    return None if not macs or not p50_ms else macs / (p50_ms / 1e3) / 1e9


def cell_key(condition: str, circuit: str, direction: str) -> str:
    return f"{condition}|{circuit}|{direction}"


def offline_fields(r: OfflineRow, base: OfflineRow | None = None) -> dict:
    """The offline row's figures under the summary's names. Weight pruning and quantization keep the
    baseline's MACs: a row that records none takes its baseline's (`base`); a step that changes the
    structure (channel pruning, distillation) records its own, which a chain's record carries."""
    macs = r.macs if r.macs is not None or base is None or not r.baseline else base.macs
    err, lat, xc = r.error, r.latency_ms, r.cross_check
    model = lat.model if lat else None
    size_bytes = r.size.bytes
    p50 = finite(model.p50_ms) if model else None
    return {
        "key": r.key, "name": r.name, "in_offline": True, "technique": r.technique, "framework": r.framework,
        "framework_label": FRAMEWORK_LABELS.get(r.framework, r.framework), "runtime": r.runtime,
        "baseline": r.baseline, "status": r.status, "reason": r.reason, "status_text": status_text(r.status, r.reason),
        "size_bytes": size_bytes, "size_mb": None if size_bytes is None else size_bytes / 1e6,
        "gzip_bytes": r.size.gzip_bytes, "params": r.size.params, "nonzero_params": r.size.nonzero_params,
        "mse_mean": finite(err.mse_mean) if err else None, "mse_v": finite(err.mse_v) if err else None,
        "mse_w": finite(err.mse_w) if err else None, "mae_v_mps": finite(err.mae_v_mps) if err else None,
        "mae_w_radps": finite(err.mae_w_radps) if err else None,
        "latency_p50_ms": p50, "latency_p90_ms": finite(model.p90_ms) if model else None,
        "brain_step_p50_ms": finite(lat.brain_step.p50_ms) if lat and lat.brain_step else None,
        "throughput_fps": finite(r.throughput.fps) if r.throughput else None,
        "speedup_vs_baseline": finite(xc.speedup_p50) if xc else None,
        "size_ratio_vs_baseline": finite(xc.size_ratio) if xc else None,
        "steps": list(r.steps or [r.name]), "step_sizes": list(r.step_sizes), "precision": r.precision,
        "macs": macs, "gmacs_per_s": gmacs(macs, p50),
        **_target_fields(r),
    }


def _target_fields(r: OfflineRow) -> dict:
    t = r.on_target
    if t is None:
        return {}
    return {"target": t.target, "target_status": t.status, "target_reason": t.reason,
            "target_brain_step_p50_ms": finite(t.p50_ms) if t.p50_ms is not None else None,
            "target_device": t.device.text() if t.device else None,
            "target_check_ok": t.check.ok if t.check else None,
            "target_check_max_abs": max(t.check.max_abs_dv, t.check.max_abs_dw) if t.check else None}


def _ci(prefix: str, values) -> dict:
    ci = bootstrap_ci(list(values))
    return {f"{prefix}_mean": ci[0] if ci else None, f"{prefix}_lo": ci[1] if ci else None,
            f"{prefix}_hi": ci[2] if ci else None}


def _score(drives: list[Drive]) -> dict:
    return {**_ci("score", (d.score for d in drives)), "n": len(drives), "clean": sum(1 for d in drives if d.clean_lap)}


def closed_loop_fields(drives: list[Drive]) -> dict:
    """The closed-loop aggregates of one variant's drives (see the module doc)."""
    default = [d for d in drives if d.condition == DEFAULT_CONDITION]
    ok = [d.metrics for d in default if d.status == "ok" and d.metrics is not None]
    circuits: dict[str, bool] = {}
    for d in default:
        circuits[d.circuit] = circuits.get(d.circuit, True) and d.clean_lap
    per_condition = {cond: ConditionScore(**_score([d for d in drives if d.condition == cond]))
                     for cond in dict.fromkeys(d.condition for d in drives)}
    cells = {}
    for cell in dict.fromkeys(d.cell for d in drives):
        cond, circuit, direction = cell
        cells[cell_key(*cell)] = ScoreCell(**_score([d for d in drives if d.cell == cell]), condition=cond,
                                           circuit=circuit, direction=direction)
    applied = {d.condition: d.latency_scale_applied for d in drives
               if d.slowdown_only and d.latency_scale_applied is not None}
    scales = sorted((applied[c], v) for c, v in per_condition.items() if c in applied)
    max_scale = None
    for scale, v in scales:  # the largest tested slow-down under which every lap is clean, no gap below
        if v.n and v.clean == v.n:
            max_scale = scale
        else:
            break
    runs_completed = sum(1 for d in default if d.clean_lap)
    return {
        "cl_runs_total": len(default), "cl_runs_completed": runs_completed,
        "cl_circuits_total": len(circuits), "cl_circuits_completed": sum(1 for v in circuits.values() if v),
        "cl_all_completed": bool(default) and all(d.clean_lap for d in default),
        "cl_mean_average_speed": mean(m.average_speed for m in ok),
        "cl_mean_position_deviation_mae": mean(m.position_deviation_mae for m in ok),
        "cl_mean_brain_frequency_hz": mean(m.brain_iterations_frequency for m in ok),
        "cl_mean_inference_ms": mean(m.mean_inference_time for m in ok),
        "cl_mean_real_time_factor": mean(m.real_time_factor for m in ok),
        "cl_mean_bm_position_deviation": mean(m.bm_position_deviation for m in ok),
        "cl_mean_interventions": mean(m.interventions for m in ok),
        **(_ci("cl_score", (d.score for d in default)) if default else
           {"cl_score_mean": None, "cl_score_lo": None, "cl_score_hi": None}),
        **_ci("cl_autonomy", (m.autonomy for m in ok)),
        **_ci("cl_deviation", (m.position_deviation_mae for m in ok)),
        "cl_conditions": per_condition, "cl_cells": cells,
        "cl_max_slow": max_scale if len(scales) > 1 else None,
        "cl_slow_tested": max((s for s, _ in scales), default=None),
        "cl_text": f"{runs_completed}/{len(default)}" if default else NULL,
    }


def summarize(offline: list[OfflineRow], drives: list[Drive]) -> list[VariantSummary]:
    """One summary per variant: offline rows in their order, then variants seen only in closed loop.
    A drive that names no framework still matches a unique offline variant of its name."""
    by_key = {r.key: r for r in offline}
    fields = {r.key: offline_fields(r, by_key.get(variant_key(r.framework, r.baseline or ""))) for r in offline}
    mine: dict[str, list[Drive]] = {}
    for d in drives:
        k = variant_key(d.framework, d.variant)
        if k not in fields:
            same_name = [kk for kk, f in fields.items() if f["name"] == d.variant and not d.framework]
            if len(same_name) == 1:
                k = same_name[0]
            else:
                fields[k] = {"key": k, "name": d.variant, "in_offline": False, "framework": d.framework,
                             "framework_label": FRAMEWORK_LABELS.get(d.framework, d.framework), "status": "skipped",
                             "reason": "not evaluated offline",
                             "status_text": status_text("skipped", "not evaluated offline")}
        mine.setdefault(k, []).append(d)
    return [VariantSummary(**f, **closed_loop_fields(mine.get(k, []))) for k, f in fields.items()]
