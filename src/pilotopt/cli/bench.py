"""`pilotopt bench ...`: speed measurements written as JSON (never timed unit tests)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

app = typer.Typer(help="Benchmarks that write JSON.", no_args_is_help=True)


@app.command("sim")
def bench_sim_cmd(
    out: Path = typer.Option(Path("bench_sim.json"), help="Where to write the JSON."),
    circuit: str = typer.Option("simple", help="Circuit to render and drive."),
    frames: int = typer.Option(300, min=10, help="Frames per rendering measurement."),
    repeats: int = typer.Option(3, min=1, help="Repeats of each measurement (the median is reported)."),
) -> None:
    """Rendered frames per second (640 x 480 and the PilotNet view) and the expert's real-time factor."""
    from pilotopt.atomic import write_json
    from pilotopt.bench.sim import bench_sim

    result = bench_sim(circuit=circuit, frames=frames, repeats=repeats)
    write_json(out, result)
    typer.echo(json.dumps(result["summary"], indent=2))
    typer.echo(f"written: {out}")
