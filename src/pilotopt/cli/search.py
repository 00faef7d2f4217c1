"""`pilotopt search`: search chains and settings for the fastest variant that still drives."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from pilotopt.cli.target import TargetHelp
from pilotopt.search import describe, load_search_config, open_run, run_search
from pilotopt.targets import parse_target


def search_cmd(
    run: Path = typer.Option(..., help="A finished `pilotopt run` folder: its data, baselines, technique defaults "
                                       "and closed-loop protocol (repetitions, conditions) are the search's."),
    config: Optional[Path] = typer.Option(None, help="YAML: trials, seed, sampler, objectives, latency, executor, "
                                                     "workers, address, screen, constraints, space (see docs/search.md)."),
    out: Optional[Path] = typer.Option(None, help="Search folder (default RUN/search); rerunning resumes it."),
    trials: Optional[int] = typer.Option(None, min=1, help="Trials to finish in all (default 30), earlier runs' included."),
    seed: Optional[int] = typer.Option(None, help="Sampler seed (default 0)."),
    sampler: Optional[str] = typer.Option(None, help="tpe (multi-objective TPE, default) or nsga2."),
    executor: Optional[str] = typer.Option(None, help="local (one trial at a time, default) or ray (Ray Tune)."),
    address: Optional[str] = typer.Option(None, help="Ray cluster address with --executor ray; default starts one."),
    workers: Optional[int] = typer.Option(None, min=1, help="Trials at once with --executor ray (default 1)."),
    latency: Optional[str] = typer.Option(None, help="Latency objective: measured (p50 ms, default) or macs "
                                                     "(MMACs per prediction, machine-independent)."),
    max_latency_ms: Optional[float] = typer.Option(None, help="Constraint: p50 at most this (not driven otherwise)."),
    max_size_mb: Optional[float] = typer.Option(None, help="Constraint: artifact at most this many MB."),
    min_score: Optional[float] = typer.Option(None, min=0, max=100, help="Constraint: driving score (mean over the "
                                                                        "conditions) at least this, judged after "
                                                                        "the drives."),
    min_autonomy: Optional[float] = typer.Option(None, min=0, max=100, help="Constraint: mean autonomy (PilotNet's, "
                                                                           "%) at least this."),
    sensitivity_layers: Optional[int] = typer.Option(None, min=0, help="Per-layer sensitivity by driving for the "
                                                                     "best int8 ONNX Runtime trial: at most this many "
                                                                     "layers (0: off; default every weight layer)."),
    show_space: bool = typer.Option(False, "--show-space", help="Print the search space and exit."),
    target: Optional[str] = typer.Option(None, help=TargetHelp + " Trials are timed there and ranked by its brain "
                                                   "step (default: the run's own target, if it had one)."),
) -> None:
    """Draw candidate chains (structure > sparsity > precision and runtime) with their settings, screen each
    offline, drive the promising ones with the run's repetitions and conditions, and keep the Pareto front
    of driving score, latency and size. Writes OUT/results.json, OUT/search.md, OUT/front.png and
    OUT/replay.yaml (the recommended variant for `pilotopt optimize --config`).

    Optuna's study lives in OUT/optuna.db: a killed search resumes, and a finished trial is never
    computed again."""
    overrides = {"trials": trials, "seed": seed, "sampler": sampler, "executor": executor, "address": address,
                 "workers": workers, "latency": latency,
                 "sensitivity_layers": sensitivity_layers}
    cons = {k: v for k, v in (("max_latency_ms", max_latency_ms), ("max_size_mb", max_size_mb),
                              ("min_score", min_score), ("min_autonomy", min_autonomy)) if v is not None}
    scfg = load_search_config(config, overrides)
    if cons:
        scfg = scfg.model_copy(update={"constraints": scfg.constraints.model_copy(update=cons)})
    if target:
        parse_target(target)  # a malformed spec: one line before any work
    ctx = open_run(run, out, scfg, target)
    if show_space:
        for line in describe(ctx.search_space, {n: b.kind for n, b in ctx.baselines.items()}):
            typer.echo(line)
        return

    def say(line: str) -> None:
        typer.echo(line, err=True)

    doc = run_search(ctx, say=say)
    typer.echo(f"search: {ctx.out / 'search.md'}")
    if doc.get("files", {}).get("replay"):
        typer.echo(f"replay: {doc['files']['replay']}")
