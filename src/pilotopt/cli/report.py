"""`pilotopt report ...`: documents made from a finished run."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from pilotopt.atomic import write_text
from pilotopt.report.publish import publish

app = typer.Typer(help="Documents made from a finished run's results.", no_args_is_help=True)


@app.command("publish")
def publish_cmd(
    results: Path = typer.Option(..., help="OUT/report/results.json of a finished `pilotopt run`."),
    run: Optional[Path] = typer.Option(None, help="OUT/run.json (wall time per stage)."),
    out: Path = typer.Option(..., help="Markdown file to write, e.g. docs/full_profile.md."),
    command: Optional[str] = typer.Option(None, help="The command that made the run, quoted in the document."),
) -> None:
    """Markdown tables of a run (stages, offline, closed loop with intervals, conditions, the
    correlation of offline error with driving, and the side-by-side with the study), from its
    results.json: tables in docs/ are generated, never typed."""
    write_text(out, publish(results, run, command))
    typer.echo(f"written: {out}")
