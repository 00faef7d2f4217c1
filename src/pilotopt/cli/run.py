"""`pilotopt run`: the whole pipeline from a built-in default or a YAML config."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from pilotopt.cli.model_options import ArchArgsOption, ArchOption, InputOption, parse_arch_args
from pilotopt.cli.target import TargetHelp
from pilotopt.cli.progress import line_sayer
from pilotopt.errors import BadInputError
from pilotopt.pipeline.config import load_config
from pilotopt.pipeline.executors import get_executor
from pilotopt.pipeline.run import run_pipeline
from pilotopt.pipeline.tracking import make_tracker


def run_cmd(
    config: Optional[Path] = typer.Option(None, help="YAML config (keys: profile, seed, threads, data, train, techniques, "
                                                     "technique_defaults, technique_settings, offline, closed_loop, "
                                                     "executor, report, mlflow); see docs/report.md."),
    out: Path = typer.Option(Path("out/run"), help="Output folder; rerunning with the same folder reuses finished stages."),
    profile: Optional[str] = typer.Option(None, help="quick (default: small data, few epochs, < 20 min on 2 cores) or full."),
    data: Optional[list[Path]] = typer.Option(None, help="Use these dataset folder(s) instead of generating one."),
    model: Optional[Path] = typer.Option(None, help="Start from this model (any kind pilotopt reads) instead of training "
                                                    "baselines; the report names it as the baseline."),
    arch: Optional[str] = ArchOption,
    arch_args: Optional[str] = ArchArgsOption,
    input_: Optional[str] = InputOption,
    techniques: Optional[str] = typer.Option(None, help="Comma-separated techniques, or all (default all)."),
    frameworks: Optional[str] = typer.Option(None, help="Baselines to train: torch,tf (default both)."),
    executor: Optional[str] = typer.Option(None, help="Where the training, technique and drive jobs run: local (processes on this machine) or ray (tasks spread over a Ray cluster; the --out folder must be on a filesystem every node shares)."),
    address: Optional[str] = typer.Option(None, help="Ray cluster address (with --executor ray); default starts a local one."),
    workers: Optional[int] = typer.Option(None, help="Drives at once (default 1, so timings do not compete)."),
    max_latency_ms: Optional[float] = typer.Option(None, help="Recommendation: the variant's p50 model latency must not exceed this."),
    max_size_mb: Optional[float] = typer.Option(None, help="Recommendation: the artifact must not exceed this many MB."),
    must_complete: Optional[bool] = typer.Option(None, "--must-complete/--no-must-complete",
                                                 help="Recommendation: the variant must complete every test lap (default yes)."),
    repeats: Optional[int] = typer.Option(None, min=1, help="Closed loop: drives per variant, circuit and condition, "
                                                          "differing by seed (quick profile: 3)."),
    conditions: Optional[str] = typer.Option(None, help="Closed loop: comma-separated conditions the shortlist is "
                                                        "driven under, e.g. dusk,gaussian:10,slow:20 (see `pilotopt "
                                                        "sim list`); 'none' for the default only."),
    mlflow: bool = typer.Option(False, "--mlflow", help="Also log parameters, metrics and the report to OUT/mlruns (MLflow)."),
    target: Optional[str] = typer.Option(None, help=TargetHelp + " Realtime drives then draw their latency from "
                                                   "its brain-step samples, and the decision ranks by them."),
) -> None:
    """Generate data, train the baselines, apply every technique, evaluate offline, drive each variant on
    the test circuits in real time, and write OUT/report (report.md, report.html, results.json/csv).

    Every stage is cached: rerunning does nothing new, and a killed run resumes where it stopped."""
    overrides: dict = {}
    if profile is not None:
        overrides["profile"] = profile
    if data:
        overrides.setdefault("data", {})["path"] = [str(p) for p in data]
    if model is not None:
        overrides["model"] = {"path": str(model), "arch": arch, "arch_args": parse_arch_args(arch_args) or {},
                              "input": input_}
    elif arch or arch_args or input_:
        raise BadInputError("--arch, --arch-args and --input describe a given model; pass --model too")
    if techniques is not None:
        names = [t.strip() for t in techniques.split(",") if t.strip()]
        overrides["techniques"] = "all" if names == ["all"] else names
    if frameworks is not None:
        overrides.setdefault("train", {})["frameworks"] = [f.strip() for f in frameworks.split(",") if f.strip()]
    for key, value in (("name", executor), ("address", address), ("workers", workers)):
        if value is not None:
            overrides.setdefault("executor", {})[key] = value
    for key, value in (("max_latency_ms", max_latency_ms), ("max_size_mb", max_size_mb),
                       ("must_complete", must_complete)):
        if value is not None:
            overrides.setdefault("report", {})[key] = value
    if repeats is not None:
        overrides.setdefault("closed_loop", {})["repeats"] = repeats
    if conditions is not None:
        names = [c.strip() for c in conditions.split(",") if c.strip()]
        overrides.setdefault("closed_loop", {})["conditions"] = [] if names == ["none"] else names
    if mlflow:
        overrides["mlflow"] = True
    if target is not None:
        overrides.setdefault("target", {})["device"] = target
    cfg = load_config(config, overrides)
    if cfg.mlflow:
        make_tracker(True, out / "mlruns")  # fails now, in one line, if mlflow is missing
    if cfg.executor.name == "ray":
        get_executor("ray", workers=cfg.executor.workers, address=cfg.executor.address)

    summary = run_pipeline(cfg, out, say=line_sayer())
    typer.echo(f"report: {summary['report'].get('report_md', out / 'report' / 'report.md')}")
    typer.echo(f"html:   {summary['report'].get('report_html', out / 'report' / 'report.html')}")
    typer.echo(f"total:  {summary['total_seconds'] / 60:.1f} min")
