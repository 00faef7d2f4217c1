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
from pilotopt.records import SEARCH_TRIAL_SCHEMA, OfflineRow, SearchTrial, VariantSummary, drives_of, offline_rows
from pilotopt.search.context import SearchContext
from pilotopt.search.space import Candidate
from pilotopt.targets import parse_target
from pilotopt.techniques import optimize

Say = Callable[[str], None]


def trial_path(ctx: SearchContext, name: str) -> Path:
    return ctx.out / "trials" / f"{name}.json"


def cached_trial(ctx: SearchContext, name: str) -> SearchTrial | None:
    path = trial_path(ctx, name)
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return SearchTrial.from_json(doc, f"trial {path}") if doc.get("schema") == SEARCH_TRIAL_SCHEMA else None


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
                             only=set(names), target=parse_target(cfg.target.device) if cfg.target.device else None,
                             target_iterations=cfg.target.iterations)
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


def trial_of(name: str, agg: VariantSummary, base: VariantSummary | None, **fields) -> SearchTrial:
    """A driven (or screened) variant as the search judges it: its summary, its score over every
    condition, its MSE against its baseline's and its MACs."""
    mse, bmse = agg.mse_mean, base.mse_mean if base else None
    # a trial's row is aggregated alone: without a structure step's own count (channel pruning,
    # distillation) it runs the baseline's dense MACs (weight pruning and quantization keep them)
    macs = agg.macs or (base.macs if base else None)
    return SearchTrial(name=name, summary=agg, score=search_score(agg) if agg.cl_runs_total else 0.0,
                       mse_ratio=(mse / bmse) if mse is not None and bmse else None,
                       mmacs=macs / 1e6 if macs else None, **fields)


def screen(ctx: SearchContext, row: OfflineRow, base: VariantSummary) -> str | None:
    """Why the candidate is not driven (None: drive it)."""
    s, c = ctx.search.screen, ctx.search.constraints
    mse, bmse = row.mse_mean, base.mse_mean
    p50, size = row.p50_ms, row.size_bytes
    if ctx.cfg.target.device and row.on_target is not None and row.on_target.ok:
        p50 = row.on_target.p50_ms  # what the car waits for, on the run's target
    if mse is None or p50 is None:
        return "no offline MSE or latency"
    if ctx.cfg.target.device and row.on_target is not None and not row.on_target.ok:
        return row.on_target.reason or f"not runnable on {row.on_target.target}"
    if bmse and mse / bmse > s.max_mse_ratio:
        return f"MSE {mse / bmse:.2f}x its baseline's (screen.max_mse_ratio {s.max_mse_ratio})"
    if c.max_latency_ms is not None and p50 > c.max_latency_ms:
        return f"p50 {p50:.3f} ms > constraints.max_latency_ms {c.max_latency_ms}"
    if c.max_size_mb is not None and size is not None and size / 1e6 > c.max_size_mb:
        return f"size {size / 1e6:.3f} MB > constraints.max_size_mb {c.max_size_mb}"
    return None


def reference(ctx: SearchContext, say: Say = print) -> dict[str, SearchTrial]:
    """The baselines as variants of the search, measured and driven with the whole protocol: what
    every trial is compared against (reference.json holds them for the Ray workers)."""
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
        out[name] = ref = trial_of(name, agg, None, state="complete", fidelity=3,
                                   candidate={"baseline": name, "steps": [ctx.baselines[name].technique], "chain": name})
        say(f"reference {name}: score {ref.score:.1f}, p50 {agg.latency_p50_ms or float('nan'):.3f} ms, "
            f"{agg.size_mb or float('nan'):.3f} MB")
    write_json(ctx.out / "reference.json", {k: v.to_json() for k, v in out.items()})
    return out


def read_reference(path: Path) -> dict[str, SearchTrial]:
    return {k: SearchTrial.from_json(v, f"baseline '{k}' in {path}") for k, v in json.loads(path.read_text()).items()}


def run_trial(ctx: SearchContext, cand: Candidate, ref: dict[str, SearchTrial], say: Say = _quiet) -> SearchTrial:
    """The trial's result (read back when it was computed before)."""
    done = cached_trial(ctx, cand.name)
    if done is not None:
        return done.model_copy(update={"cached": True})
    ctx.out.mkdir(parents=True, exist_ok=True)
    with open(ctx.out / "computed.log", "a") as log:  # one line per trial computed (not read back)
        log.write(cand.name + "\n")
    t0 = time.perf_counter()
    import platform

    where = {"candidate": cand.to_dict(), "variant": str(ctx.variants_dir / cand.name),
             "host": platform.node()}  # where its latency was measured (a Ray cluster may spread trials)
    doc = _judge(ctx, cand, ref[cand.baseline].summary, where, say)
    doc = doc.model_copy(update={"seconds": round(time.perf_counter() - t0, 2)})
    write_json(trial_path(ctx, cand.name), doc.to_json())
    return doc


def _judge(ctx: SearchContext, cand: Candidate, base: VariantSummary, where: dict, say: Say) -> SearchTrial:
    """Build, screen offline, drive at the fidelity the screen allows."""
    v = build(ctx, cand.name, cand.baseline, list(cand.steps), cand.settings, say)
    if v.status != "ok":
        return SearchTrial(name=cand.name, reason=f"{v.status}: {v.reason}", **where)
    row = evaluate(ctx, {cand.name})[cand.name]
    if row.status != "ok":
        return SearchTrial(name=cand.name, reason=f"offline evaluation {row.status}: {row.reason}", **where)
    why = screen(ctx, row, base)
    records: list[dict] = []
    fidelity = 1
    if why is None:
        records = drive(ctx, row, ["default"], 1, say)
        fidelity = 2
        first = aggregate(row, records).cl_score_mean or 0.0
        if first >= ctx.search.screen.first_drive_min_score:
            records = drive(ctx, row, ["default", *ctx.cfg.closed_loop.conditions], None, say)
            fidelity = 3
        else:
            why = (f"first drive scored {first:.1f} < screen.first_drive_min_score "
                   f"{ctx.search.screen.first_drive_min_score}")
    return trial_of(cand.name, aggregate(row, records), base, state="complete", screen=why, fidelity=fidelity,
                    **where)


# what a trial that produced no scored variant tells the sampler: worse than any real trial in every
# objective (a score of 0, an absurd latency and size), so the region that failed is sampled less.
# Reported as a failure instead, Optuna's TPE ignores the trial and keeps drawing the same region
# (a 30-trial demo search spent 19 trials on one pruning level that always broke the student).
_FAILED_WORST = {"maximize": 0.0, "minimize": 1e9}


def sampler_values(ctx: SearchContext, doc: SearchTrial) -> tuple[list[float], bool]:
    """(the values to tell the sampler, whether they are the trial's own): a failed trial's are the
    dominated point above; it stays failed in the trial table and is never on the front."""
    values = objective_values(ctx, doc)
    if values is not None:
        return values, True
    return [_FAILED_WORST[d] for d in ctx.search.directions], False


def objective_values(ctx: SearchContext, doc: SearchTrial) -> list[float] | None:
    """The trial's values in the order of `search.objectives` (None: the trial failed)."""
    m = doc.summary
    if not doc.complete or m is None:
        return None
    on_device = ctx.cfg.target.device and m.target_status == "ok"  # the run's target: its brain step
    latency = (doc.mmacs if ctx.search.latency == "macs"
               else m.target_brain_step_p50_ms if on_device else m.latency_p50_ms)
    values = {"score": doc.score, "latency": latency, "size": m.size_mb}
    out = [values[o] for o in ctx.search.objectives]
    return None if any(v is None for v in out) else [float(v) for v in out]
