"""`pilotopt evaluate`: measure every variant of an artifacts folder offline (size, error, latency)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer

from pilotopt.artifacts import detect_kind, resolve_path
from pilotopt.cli.model_options import (ArchArgsOption, ArchOption, InputOption, open_model, parse_arch_args,
                                        warn_out_of_range)
from pilotopt.cli.progress import console, out as stdout
from pilotopt.cli.target import TargetHelp
from pilotopt.targets import parse_target
from pilotopt.data.config import DEFAULT_TEST_CIRCUITS
from pilotopt.evaluate.harness import DEFAULT_TIMEOUT, THROUGHPUT_BATCH, evaluate_artifacts
from pilotopt.evaluate.latency import MIN_CALLS, MIN_SECONDS
from pilotopt.evaluate.results import RESULTS_CSV, RESULTS_JSON, make_table, reasons


def evaluate_cmd(
    artifacts: Path = typer.Option(..., help="Artifacts folder (one sub-folder per variant, each with variant.json), "
                                             "or one model file or folder of any kind pilotopt reads."),
    arch: Optional[str] = ArchOption,
    arch_args: Optional[str] = ArchArgsOption,
    input_: Optional[str] = InputOption,
    data: list[Path] = typer.Option(..., help="Dataset root folder (repeat for several)."),
    out: Path = typer.Option(..., help="Output folder for results.json, results.csv, per-variant results and logs."),
    threads: int = typer.Option(2, help="CPU threads given to every runtime (the same for all variants)."),
    test_circuits: str = typer.Option(",".join(DEFAULT_TEST_CIRCUITS), help="Held-out circuits (comma-separated)."),
    max_frames: Optional[int] = typer.Option(None, help="Evaluate this many test frames, evenly spaced (default all)."),
    min_calls: int = typer.Option(MIN_CALLS, help="Timed calls per latency measurement (at least)."),
    min_seconds: float = typer.Option(MIN_SECONDS, help="Seconds per latency measurement (at least)."),
    throughput_batch: int = typer.Option(THROUGHPUT_BATCH, help="Batch size of the throughput measurement and accuracy pass."),
    timeout: float = typer.Option(DEFAULT_TIMEOUT, help="Seconds one variant may take before it is stopped and marked failed."),
    force: bool = typer.Option(False, help="Measure again even variants whose artifact and protocol are unchanged."),
    cache_dir: Optional[Path] = typer.Option(None, help="Preprocessed-data cache (default $PILOTOPT_CACHE or ~/.cache/pilotopt)."),
    target: Optional[str] = typer.Option(None, help=TargetHelp + " Each variant's brain step is also timed there "
                                                   "(pilotopt-edge bench, its outputs checked against this machine's)."),
    target_iterations: int = typer.Option(200, min=1, help="Brain steps timed per variant on the target."),
) -> None:
    """Measure every variant of an artifacts folder by one protocol: size, error, latency, memory.

    Each variant (ARTIFACTS/<variant>/variant.json) runs in a fresh process: artifact and gzip size, parameters, MSE per output on the held-out circuits, batch-1
    latency (model call and whole brain step), throughput, peak memory, and agreement with its
    baseline variant. Writes OUT/results.json and OUT/results.csv and prints a table."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    if artifacts.is_file() or (artifacts / "variant.json").is_file() or (
            artifacts.is_dir() and detect_kind(resolve_path(artifacts)) is not None):
        open_model(artifacts, arch, arch_args, input_)  # one model: say what was recorded, detected or assumed
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[info]}"), TimeElapsedColumn(), console=console,
                  disable=not console.is_terminal) as prog:
        tasks: dict[str, int] = {}

        def progress(phase: str, done: int, total: int, info: dict) -> None:
            label = {"data": "preprocess frames", "variant": "variants", "target": "on the target"}[phase]
            if phase not in tasks:
                tasks[phase] = prog.add_task(label, total=total, info="")
            text = info.get("name", "") if phase == "variant" else ""
            prog.update(tasks[phase], completed=done, total=total, info=text)
            if phase == "variant" and info.get("state") == "done" and not console.is_terminal:
                row = info["row"]
                note = " (cached)" if row.get("cached") else ""
                why = f": {row['reason']}" if row.get("reason") and row["status"] != "ok" else ""
                typer.echo(f"[{done}/{total}] {row['name']}: {row['status']}{note}{why}", err=True)
            if phase == "target" and info.get("state") == "done" and not console.is_terminal:
                tl = info["result"]
                what = (f"brain step p50 {tl.p50_ms:.2f} ms on {tl.device.text()}" if tl.ok else tl.reason)
                typer.echo(f"[{done}/{total}] {info['name']} on the target: {what}", err=True)

        doc = evaluate_artifacts(artifacts, list(data), out, threads=threads, test_circuits=test_circuits,
                                 cache_dir=cache_dir, min_calls=min_calls, min_seconds=min_seconds,
                                 throughput_batch=throughput_batch, max_frames=max_frames, progress=progress,
                                 force=force, timeout=timeout, arch=arch, arch_args=parse_arch_args(arch_args),
                                 contract=input_, target=parse_target(target) if target else None,
                                 target_iterations=target_iterations)
    if stdout.is_terminal or os.environ.get("COLUMNS"):
        stdout.print(make_table(doc))
    else:  # a pipe or file: do not squeeze the table into 80 columns
        from rich.console import Console

        Console(file=stdout.file, width=200).print(make_table(doc))
    for line in reasons(doc):
        typer.echo(line)
    rows = {row["name"]: row for row in doc["variants"]}
    for row in doc["variants"]:
        share = row.get("outputs_out_of_range_share")
        if share is None:
            continue
        contract = row.get("input_contract") or "pilotopt"
        base = rows.get(row.get("baseline") or "")
        parent = None
        if base is not None and base is not row and (base.get("input_contract") or "pilotopt") == contract:
            parent = (base["name"], base.get("outputs_out_of_range_share"))
        warn_out_of_range(share, contract, f"{row['name']}'s test predictions", parent)
    typer.echo(f"written: {out / RESULTS_JSON}, {out / RESULTS_CSV}")
