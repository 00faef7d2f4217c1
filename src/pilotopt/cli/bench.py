"""`pilotopt bench ...`: speed measurements written as JSON (never timed unit tests)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from pilotopt.atomic import write_json
from pilotopt.bench.floor import measure_call_floors
from pilotopt.bench.machine import measure_peaks
from pilotopt.bench.runtimes import bench_runtimes, render_table
from pilotopt.bench.techniques import bench_techniques, claim_lines, render_table as techniques_table
from pilotopt.data.config import DEFAULT_TEST_CIRCUITS
from pilotopt.evaluate.latency import MIN_CALLS, MIN_SECONDS

app = typer.Typer(help="Benchmarks that write JSON.", no_args_is_help=True)


@app.command("sim")
def bench_sim_cmd(
    out: Path = typer.Option(Path("bench_sim.json"), help="Where to write the JSON."),
    circuit: str = typer.Option("simple", help="Circuit to render and drive."),
    frames: int = typer.Option(300, min=10, help="Frames per rendering measurement."),
    repeats: int = typer.Option(3, min=1, help="Repeats of each measurement (the median is reported)."),
) -> None:
    """Rendered frames per second (640 x 480 and the PilotNet view) and the expert's real-time factor."""
    # scipy: imported on first use, not with this module
    from pilotopt.bench.sim import bench_sim

    result = bench_sim(circuit=circuit, frames=frames, repeats=repeats)
    write_json(out, result)
    typer.echo(json.dumps(result["summary"], indent=2))
    typer.echo(f"written: {out}")


@app.command("runtimes")
def bench_runtimes_cmd(
    model: list[Path] = typer.Option(..., help="Trained baseline: torch model.pt, Keras .h5/SavedModel, or a "
                                               "training output folder. Repeat for one torch and one tf model."),
    data: Optional[Path] = typer.Option(None, help="Dataset root: benchmark on its test split "
                                                   "(default: random frames)."),
    cache_dir: Optional[Path] = typer.Option(None, help="Preprocessed-data cache "
                                                        "(default $PILOTOPT_CACHE or ~/.cache/pilotopt)."),
    threads: int = typer.Option(2, min=1, help="CPU threads for every runtime."),
    batch: int = typer.Option(64, min=1, help="Batch size of the throughput measurement."),
    out: Path = typer.Option(Path("bench_runtimes.json"), help="Where to write the JSON."),
    artifacts: Optional[Path] = typer.Option(None, help="Keep the exported variants in this folder "
                                                        "(default: a temp folder)."),
    min_calls: int = typer.Option(MIN_CALLS, min=1, help="Timed calls at batch 1 at least (batch runs: a fifteenth, >= 5)."),
    min_seconds: float = typer.Option(MIN_SECONDS, min=0.0, help="Seconds of timed calls per measurement at least."),
) -> None:
    """Export a baseline to every runtime at fp32 and time them side by side (batch-1 latency,
    batch throughput, output agreement, speedups vs PyTorch eager and LiteRT)."""
    from rich.console import Console

    err = Console(stderr=True)
    doc = bench_runtimes(model, data=data, cache_dir=cache_dir, threads=threads, batch=batch, artifacts=artifacts,
                         min_calls=min_calls, min_seconds=min_seconds,
                         progress=lambda msg: err.print(f"[dim]{msg}[/]", highlight=False))
    write_json(out, doc)
    console = Console()
    console.print(render_table(doc))
    for r in doc["rows"]:
        if r["status"] != "ok":
            reason = r["reason"] or ""
            prefix = "" if reason.startswith(r["status"]) else f"{r['status']}: "
            console.print(f"{r['name']}: {prefix}{reason}", highlight=False, markup=False)
    for warning in doc.get("warnings", []):
        console.print(f"warning: {warning}", highlight=False, markup=False)
    typer.echo(f"written: {out}")


@app.command("techniques")
def bench_techniques_cmd(
    variants: Path = typer.Option(..., help="Variants folder from `pilotopt optimize` (must hold the baseline variant)."),
    data: Path = typer.Option(..., help="Dataset root: MSE and frames from its test split."),
    out: Path = typer.Option(Path("bench_techniques.json"), help="Where to write the JSON."),
    cache_dir: Optional[Path] = typer.Option(None, help="Preprocessed-data cache (default $PILOTOPT_CACHE or ~/.cache/pilotopt)."),
    threads: int = typer.Option(2, min=1, help="CPU threads for every runtime."),
    frames: int = typer.Option(2000, min=1, help="Test frames scored for MSE (evenly spread)."),
    rounds: int = typer.Option(3, min=1, help="Round-robin timing rounds (the median p50 is reported)."),
    min_calls: int = typer.Option(200, min=1, help="Timed batch-1 calls per round at least."),
    min_seconds: float = typer.Option(1.0, min=0.0, help="Seconds of timed calls per round at least."),
    speedup_goal: float = typer.Option(3.0, min=1.0, help="Speed-up over the baseline a variant must reach to be listed."),
    mse_tolerance: float = typer.Option(0.10, min=0.0, help="Allowed relative MSE increase over the baseline."),
    test_circuits: str = typer.Option(",".join(DEFAULT_TEST_CIRCUITS), help="Held-out circuits (comma-separated)."),
    peak_seconds: float = typer.Option(3.0, min=0.0, help="Seconds per GEMM kernel when measuring the machine's "
                                                          "peaks first (0: skip the % of peak column)."),
) -> None:
    """Time every variant side by side in one process (batch 1, round-robin) with its test MSE, against
    the baseline and against the unchanged baseline in the variant's own runtime."""
    from rich.console import Console

    err = Console(stderr=True)
    doc = bench_techniques(variants, data, cache_dir=cache_dir, threads=threads, frames=frames, rounds=rounds,
                           min_calls=min_calls, min_seconds=min_seconds, speedup_goal=speedup_goal,
                           mse_tolerance=mse_tolerance, peak_seconds=peak_seconds,
                           test_circuits=tuple(c.strip() for c in test_circuits.split(",") if c.strip()), progress=lambda m: err.print(f"[dim]{m}[/]", highlight=False))
    write_json(out, doc)
    Console(width=160).print(techniques_table(doc))
    for line in claim_lines(doc, speedup_goal, mse_tolerance):
        typer.echo(line)
    for w in doc["warnings"]:
        typer.echo(f"warning: {w}")
    typer.echo(f"written: {out}")


@app.command("machine")
def bench_machine_cmd(
    out: Path = typer.Option(Path("bench_machine.json"), help="Where to write the JSON."),
    threads: int = typer.Option(2, min=1, help="Threads the kernels run on (those the runs use)."),
    seconds: float = typer.Option(3.0, min=0.1, help="Seconds of timed calls per kernel."),
    size: int = typer.Option(1024, min=64, help="Side of the square GEMM."),
    floors: bool = typer.Option(False, "--floors", help="Also each runtime's fixed cost of one batch-1 call (a "
                                                       "flatten + dense model with PilotNet's input)."),
) -> None:
    """This CPU's sustained fp32 and int8 multiply-accumulate peaks (GMAC/s), measured with ONNX
    Runtime's and PyTorch's own GEMM kernels: what `bench techniques` compares each variant with.
    With --floors, the per-call floor of every runtime: what no chain at batch 1 gets below."""
    doc = measure_peaks(threads, seconds, size)
    if floors:
        doc["call_floors"] = measure_call_floors(threads, min(seconds, 1.0))
    write_json(out, doc)
    for runtime, ms in ((doc.get("call_floors") or {}).get("floors_ms") or {}).items():
        typer.echo(f"{runtime}: {ms:.4f} ms per batch-1 call (floor)")
    for runtime, why in ((doc.get("call_floors") or {}).get("errors") or {}).items():
        typer.echo(f"{runtime}: floor not measured ({why})")
    for kernel, rate in doc["kernels"].items():
        typer.echo(f"{kernel}: {rate:.1f} GMAC/s")
    for who, why in doc["errors"].items():
        typer.echo(f"{who}: not measured ({why})")
    fp32, int8 = doc["fp32_gmacs"], doc["int8_gmacs"]
    typer.echo(f"peak on {threads} thread(s): fp32 {fp32 or 0:.1f} GMAC/s, int8 {int8 or 0:.1f} GMAC/s; written: {out}")


@app.command("closed-loop")
def bench_closed_loop_cmd(
    run: Path = typer.Option(..., help="Output folder of a finished `pilotopt run` (its variants and offline "
                                       "latency samples)."),
    variants: Optional[str] = typer.Option(None, help="Comma-separated variant names (default: the fastest and "
                                                      "the slowest brain step of the run)."),
    cars: str = typer.Option(",".join(str(k) for k in (1, 4, 16, 64)), help="Cars per process to measure, "
                                                                             "comma-separated."),
    single_drives: int = typer.Option(16, min=1, help="Drives of the one-car path (the reference rate)."),
    process_drives: int = typer.Option(4, min=0, help="Drives of the process-per-drive path, each in a fresh "
                                                      "process as drives ran before cars shared one (0: skip)."),
    circuit: str = typer.Option("simple", help="Circuit every drive runs on."),
    timeout: Optional[float] = typer.Option(None, min=1.0, help="Sim seconds per drive (default: the simulator's)."),
    threads: int = typer.Option(1, min=1, help="Model threads (core-seconds count all of them)."),
    out: Path = typer.Option(Path("bench_closed_loop.json"), help="Where to write the JSON."),
) -> None:
    """Drives per core-second of K cars per process with batched brains (K = 1, 4, 16, 64) against
    the one-car path, for a fast and a slow variant of a run, under its emulated latency."""
    from rich.console import Console

    # the runtimes and the simulator's kernels: imported on first use, not with this module
    from pilotopt.bench.closed_loop import bench_closed_loop, render_table as closed_loop_table
    from pilotopt.errors import BadInputError

    try:
        counts = tuple(int(c) for c in cars.split(",") if c.strip())
    except ValueError:
        raise BadInputError(f"--cars '{cars}' is not a comma-separated list of counts, e.g. 1,4,16,64") from None
    names = [n.strip() for n in variants.split(",") if n.strip()] if variants else None
    err = Console(stderr=True)
    doc = bench_closed_loop(run, names, counts, single_drives, circuit, timeout, threads,
                            progress=lambda m: err.print(f"[dim]{m}[/]", highlight=False),
                            process_drives=process_drives)
    _write_and_show(doc, out, closed_loop_table(doc))


@app.command("scaling")
def bench_scaling_cmd(
    frames: str = typer.Option("10000,40000,80000", help="Dataset sizes to measure, comma-separated frames."),
    frameworks: str = typer.Option("torch", help="Baselines to train at each size: torch, tf or torch,tf."),
    epochs: int = typer.Option(1, min=1, help="Training epochs at each size (time grows with them)."),
    threads: int = typer.Option(2, min=1, help="Training threads."),
    workers: int = typer.Option(2, min=1, help="Recording processes of the data stage."),
    work: Optional[Path] = typer.Option(None, help="Keep the datasets and models here (default: a temporary "
                                                   "folder, one size on disk at a time, removed at the end)."),
    out: Path = typer.Option(Path("bench_scaling.json"), help="Where to write the JSON."),
) -> None:
    """Time, CPU and peak memory of the data and training stages against the dataset size (10k, 40k
    and 80k frames recorded by the simulator), each stage in a fresh process."""
    from rich.console import Console

    # psutil and the stages' code: imported on first use, not with this module
    from pilotopt.bench.scaling import bench_scaling, render_table as scaling_table
    from pilotopt.errors import BadInputError

    try:
        sizes = tuple(int(f) for f in frames.split(",") if f.strip())
    except ValueError:
        raise BadInputError(f"--frames '{frames}' is not a comma-separated list of sizes, e.g. 10000,40000") from None
    fws = tuple(f.strip() for f in frameworks.split(",") if f.strip())
    unknown = [f for f in fws if f not in ("torch", "tf")]
    if unknown or not fws:
        raise BadInputError(f"--frameworks '{frameworks}': choose torch, tf or torch,tf")
    err = Console(stderr=True)
    doc = bench_scaling(sizes, fws, epochs, threads, workers, work,
                        progress=lambda m: err.print(f"[dim]{m}[/]", highlight=False))
    _write_and_show(doc, out, scaling_table(doc))


def _write_and_show(doc: dict, out: Path, table) -> None:
    """Write a benchmark's JSON, print its table and warnings, and say where it went."""
    from rich.console import Console  # rich renders the table only: imported on use

    write_json(out, doc)
    Console(width=160).print(table)
    for w in doc["warnings"]:
        typer.echo(f"warning: {w}")
    typer.echo(f"written: {out}")
