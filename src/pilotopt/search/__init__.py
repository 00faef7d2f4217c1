"""`pilotopt search`: find the fastest, smallest variant that still drives, by searching chains and
their settings with Optuna (on Ray Tune for parallel trials), each candidate judged by how it
drives in the run's closed-loop protocol, not by its offline error."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from pilotopt.atomic import ensure_writable_dir, write_json
from pilotopt.search import engines
from pilotopt.search.config import SearchConfig, load_search_config
from pilotopt.search.context import SearchContext, open_run
from pilotopt.search.results import summarize
from pilotopt.search.sensitivity import pick, sensitivity
from pilotopt.search.space import Candidate, Space, describe, parse_space
from pilotopt.search.trial import cached_trial, reference

__all__ = ["SearchConfig", "SearchContext", "Candidate", "Space", "describe", "load_search_config", "open_run",
           "parse_space", "run_search"]


def run_search(ctx: SearchContext, say: Callable[[str], None] = print) -> dict:
    """Reference drives of the baselines, then the trials until `search.trials` have finished
    (resuming whatever an earlier run of the same folder finished), then the summary files."""
    ensure_writable_dir(ctx.out)
    t0 = time.perf_counter()
    say(f"search: {ctx.search.trials} trials, {ctx.search.sampler} sampler, {ctx.search.executor} executor; "
        f"results in {ctx.out}")
    ref = reference(ctx, say)
    if ctx.search.executor == "ray":
        engines.run_ray(ctx, ctx.out / "reference.json", say)
    else:
        engines.run_local(ctx, ref, say)
    study = engines.open_study(ctx)
    doc = summarize(ctx, study, ref)
    if ctx.search.sensitivity_layers != 0:
        best = pick([cached_trial(ctx, t["name"]) for t in doc["trials"] if t["name"]], doc["recommended"])
        if best is None:
            say("sensitivity: no int8 ONNX Runtime trial was driven with the whole protocol; skipped")
        else:
            say(f"sensitivity: {best.chain} ({best.name}), one weight layer in float at a time")
            write_json(ctx.out / "sensitivity.json", sensitivity(ctx, ref, best, say, ctx.search.sensitivity_layers))
    doc = summarize(ctx, study, ref, wall_s=round(time.perf_counter() - t0, 1))
    say(f"search: {len(doc['front'])} variant(s) on the Pareto front; recommended: "
        f"{doc['recommended'] or 'none (nothing passed the gates)'}; see {ctx.out / 'search.md'}")
    if ctx.out == (ctx.run / "search").resolve():
        say(f"search: rerun the `pilotopt run` that made {ctx.run} (every stage is cached) to add the front to its report")
    return doc
