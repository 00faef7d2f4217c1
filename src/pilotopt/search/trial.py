"""One search trial: build the candidate chain, screen it offline, drive the promising ones, and
return its objectives. Every result is written to TRIALS/<name>.json (named after the chain and
its settings) before the engine hears of it, so a killed search never computes a finished trial
again, whichever engine runs it.

Fidelities, cheapest first:
1. offline: MSE on the run's test frames and p50 latency; a candidate whose MSE exceeds its
   baseline's by `screen.max_mse_ratio`, or that breaks a latency / size constraint, is not driven
   (score 0);
2. one drive in the default condition; below `screen.first_drive_min_score` it stops there;
3. the run's whole closed-loop protocol: every repetition, in the default condition and under each
   of the run's conditions.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable

from pilotopt.atomic import write_json
from pilotopt.errors import BadInputError
from pilotopt.evaluate.harness import evaluate_artifacts
from pilotopt.pipeline.config import technique_overrides
from pilotopt.decide import summarize
from pilotopt.pipeline.run import drive_all, drive_jobs
from pilotopt.records import OfflineRow, VariantSummary, drives_of, offline_rows
from pilotopt.search.context import SearchContext
from pilotopt.search.space import Candidate
from pilotopt.techniques import optimize

TRIAL_SCHEMA = "pilotopt.search.trial/1"
Say = Callable[[str], None]


def trial_path(ctx: SearchContext, name: str) -> Path:
    return ctx.out / "trials" / f"{name}.json"


def cached_trial(ctx: SearchContext, name: str) -> dict | None:
    path = trial_path(ctx, name)
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return doc if doc.get("schema") == TRIAL_SCHEMA else None


def _quiet(_msg: str) -> None:
    return None


def _given(cfg) -> dict:
    """The run's own model options (a given state dict's arch, its input contract), so chain keys
    match the run's and its finished steps are reused."""
    if cfg.model.path is None:
        return {}
    return {"arch": cfg.model.arch, "arch_args": cfg.model.arch_args or None, "contract": cfg.model.input}


def build(ctx: SearchContext, name: str, baseline: str, steps: list[str], settings: dict[str, dict],
          say: Say = _quiet):
    """The variant `name` = `steps` with `settings` on `baseline`, in the search's variants folder
    (cached prefixes in it or in the run's variants are reused)."""
    cfg = ctx.cfg
    base = ctx.baselines[baseline]
    spec = {"steps": list(steps), **({"settings": settings} if any(settings.values()) else {})}
    return optimize(base.source, [], ctx.data_roots, ctx.variants_dir, variants={name: spec},
                    settings=technique_overrides(cfg, list(dict.fromkeys(steps))), seed=cfg.seed,
                    threads=cfg.threads, cache_dir=ctx.run / "cache", progress=say,
                    test_circuits=tuple(cfg.data.test_circuits), timeout=cfg.technique_timeout_s,
                    reuse_from=[ctx.run / "variants"], max_mse_ratio=cfg.max_mse_ratio, **_given(cfg))[0]


def evaluate(ctx: SearchContext, names: set[str]) -> dict[str, OfflineRow]:
    """Offline rows of `names`, measured with the run's offline protocol (cached per variant)."""
    cfg = ctx.cfg
    o = cfg.offline
    doc = evaluate_artifacts(ctx.variants_dir, ctx.data_roots, ctx.out / "offline", threads=cfg.threads,
                             test_circuits=tuple(cfg.data.test_circuits), cache_dir=ctx.run / "cache",
                             min_calls=o.min_calls, min_seconds=o.min_seconds, throughput_batch=o.throughput_batch,
                             max_frames=ctx.search.screen.max_frames or o.max_frames, timeout=o.timeout_s,
                             only=set(names))
    return {r.name: r for r in offline_rows(doc)}


def drive(ctx: SearchContext, row: OfflineRow, conditions: list[str], repeats: int | None, say: Say) -> list[dict]:
    cfg = ctx.cfg
    return drive_all(cfg, drive_jobs(cfg, ctx.out, [row], conditions, None, repeats), row.name, say)


def aggregate(row: OfflineRow, records: list[dict]) -> VariantSummary:
    """The decided figures of one variant: its offline row and its drives summarized."""
    return summarize([row], drives_of(records))[0]


def search_score(agg: VariantSummary) -> float:
    """The score a trial is judged by: the mean over conditions (the default one included) of the
    mean driving score, so a variant must also drive under the perturbations."""
    per = [v.score_mean for v in agg.cl_conditions.values() if v.score_mean is not None]
    return float(sum(per) / len(per)) if per else 0.0


def metrics(agg: VariantSummary, base: VariantSummary | None) -> dict:
    mse, bmse = agg.mse_mean, base.mse_mean if base else None
    # a trial's row is aggregated alone: without a structure step's own count (channel pruning,
    # distillation) it runs the baseline's dense MACs (weight pruning and quantization keep them)
    macs = agg.macs or (base.macs if base else None)
    return {"score": search_score(agg) if agg.cl_runs_total else 0.0,
            "score_default_mean": agg.cl_score_mean, "score_default_lo": agg.cl_score_lo,
            "score_default_hi": agg.cl_score_hi, "autonomy_mean": agg.cl_autonomy_mean,
            "deviation_mean": agg.cl_deviation_mean, "drives": agg.cl_runs_total,
            "clean_laps": agg.cl_runs_completed,
            "per_condition": {k: {"score_mean": v.score_mean, "score_lo": v.score_lo, "score_hi": v.score_hi,
                                  "n": v.n, "clean": v.clean} for k, v in agg.cl_conditions.items()},
            "latency_p50_ms": agg.latency_p50_ms, "mmacs": macs / 1e6 if macs else None,
            "size_mb": agg.size_mb, "mse_mean": mse, "mse_w": agg.mse_w,
            "mse_ratio": (mse / bmse) if mse is not None and bmse else None,
            "precision": agg.precision, "runtime": agg.runtime}


def screen(ctx: SearchContext, row: OfflineRow, base_row: OfflineRow) -> str | None:
    """Why the candidate is not driven (None: drive it)."""
    s, c = ctx.search.screen, ctx.search.constraints
    mse, bmse = row.mse_mean, base_row.mse_mean
    p50, size = row.p50_ms, row.size_bytes
    if mse is None or p50 is None:
        return "no offline MSE or latency"
    if bmse and mse / bmse > s.max_mse_ratio:
        return f"MSE {mse / bmse:.2f}x its baseline's (screen.max_mse_ratio {s.max_mse_ratio})"
    if c.max_latency_ms is not None and p50 > c.max_latency_ms:
        return f"p50 {p50:.3f} ms > constraints.max_latency_ms {c.max_latency_ms}"
    if c.max_size_mb is not None and size is not None and size / 1e6 > c.max_size_mb:
        return f"size {size / 1e6:.3f} MB > constraints.max_size_mb {c.max_size_mb}"
    return None


def reference(ctx: SearchContext, say: Say = print) -> dict[str, dict]:
    """The baselines as variants of the search, measured and driven with the whole protocol: what
    every trial is compared against. {baseline name: {"row": offline row, "agg": aggregates}}."""
    names = [b for b in ctx.search_space.baselines if b in ctx.baselines]
    for name in names:
        base = ctx.baselines[name]
        v = build(ctx, name, name, [base.technique], {}, say)
        if v.status != "ok":
            raise BadInputError(f"baseline '{name}' could not be prepared for the search: {v.reason}")
    rows = evaluate(ctx, set(names))
    cfg = ctx.cfg
    out = {}
    for name in names:
        records = drive(ctx, rows[name], ["default", *cfg.closed_loop.conditions], None, say)
        agg = aggregate(rows[name], records)
        out[name] = {"row": rows[name].to_json(), "agg": agg.to_json(), "metrics": metrics(agg, None)}
        m = out[name]["metrics"]
        say(f"reference {name}: score {m['score']:.1f}, p50 {m['latency_p50_ms'] or float('nan'):.3f} ms, "
            f"{m['size_mb'] or float('nan'):.3f} MB")
    write_json(ctx.out / "reference.json", out)
    return out


def run_trial(ctx: SearchContext, cand: Candidate, ref: dict[str, dict], say: Say = _quiet) -> dict:
    """The trial's result document (read back when it was computed before)."""
    done = cached_trial(ctx, cand.name)
    if done is not None:
        return dict(done, cached=True)
    ctx.out.mkdir(parents=True, exist_ok=True)
    with open(ctx.out / "computed.log", "a") as log:  # one line per trial computed (not read back)
        log.write(cand.name + "\n")
    t0 = time.perf_counter()
    doc = {"schema": TRIAL_SCHEMA, "name": cand.name, "candidate": cand.to_dict(), "state": "failed",
           "reason": None, "screen": None, "fidelity": 0, "metrics": None}
    v = build(ctx, cand.name, cand.baseline, list(cand.steps), cand.settings, say)
    if v.status != "ok":
        doc["reason"] = f"{v.status}: {v.reason}"
    else:
        row = evaluate(ctx, {cand.name})[cand.name]
        base = ref[cand.baseline]
        if row.status != "ok":
            doc["reason"] = f"offline evaluation {row.status}: {row.reason}"
        else:
            why = screen(ctx, row, OfflineRow.from_json(base["row"]))
            doc["screen"] = why
            records: list[dict] = []
            if why is None:
                records = drive(ctx, row, ["default"], 1, say)
                doc["fidelity"] = 2
                first = aggregate(row, records).cl_score_mean or 0.0
                if first >= ctx.search.screen.first_drive_min_score:
                    records = drive(ctx, row, ["default", *ctx.cfg.closed_loop.conditions], None, say)
                    doc["fidelity"] = 3
                else:
                    doc["screen"] = (f"first drive scored {first:.1f} < screen.first_drive_min_score "
                                     f"{ctx.search.screen.first_drive_min_score}")
            else:
                doc["fidelity"] = 1
            agg = aggregate(row, records)
            doc["metrics"] = metrics(agg, VariantSummary.from_json(base["agg"]))
            doc["row"] = agg.to_json()
            doc["state"] = "complete"
    import platform

    doc["host"] = platform.node()  # where its latency was measured (a Ray cluster may spread trials)
    doc["seconds"] = round(time.perf_counter() - t0, 2)
    doc["variant"] = str(ctx.variants_dir / cand.name)
    write_json(trial_path(ctx, cand.name), doc)
    return doc


def objective_values(ctx: SearchContext, doc: dict) -> list[float] | None:
    """The trial's values in the order of `search.objectives` (None: the trial failed)."""
    m = doc.get("metrics")
    if doc.get("state") != "complete" or not m:
        return None
    latency = m.get("mmacs") if ctx.search.latency == "macs" else m.get("latency_p50_ms")
    values = {"score": m.get("score"), "latency": latency, "size": m.get("size_mb")}
    out = [values[o] for o in ctx.search.objectives]
    return None if any(v is None for v in out) else [float(v) for v in out]
