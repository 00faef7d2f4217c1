"""The `pilotopt` command line. Every command has --help; user errors print one line and exit 2."""

from __future__ import annotations

import os
import sys

import typer

from pilotopt_edge.errors import EdgeError

from pilotopt import __version__
from pilotopt.cli import bench, deploy, evaluate, optimize, report, run, search, sim, target, train
from pilotopt.errors import PilotoptError, one_line
from pilotopt.techniques._settings import RenamedSettingWarning

app = typer.Typer(
    name="pilotopt",
    help="Optimize end-to-end driving models and measure every variant offline and in a built-in simulator.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _register_commands() -> None:
    app.add_typer(sim.app, name="sim")
    app.command("run")(run.run_cmd)
    app.command("train")(train.train_cmd)
    app.command("optimize")(optimize.optimize_cmd)
    app.command("evaluate")(evaluate.evaluate_cmd)
    app.command("search")(search.search_cmd)
    app.command("deploy")(deploy.deploy_cmd)
    app.add_typer(optimize.list_app, name="list")
    app.add_typer(bench.app, name="bench")
    app.add_typer(report.app, name="report")
    app.add_typer(target.app, name="target")


@app.callback()
def _root(version: bool = typer.Option(False, "--version", help="Print the version and exit.")) -> None:
    if version:
        typer.echo(f"pilotopt {__version__}")
        raise typer.Exit()


def _one_line_warnings() -> None:
    """pilotopt's own notes to the user (an old setting name) print as one line, `warning: ...`."""
    import warnings

    plain = warnings.formatwarning

    def fmt(message, category, filename, lineno, line=None):
        if issubclass(category, RenamedSettingWarning):
            return f"warning: {message}\n"
        return plain(message, category, filename, lineno, line)

    warnings.formatwarning = fmt


def main(argv: list[str] | None = None) -> None:
    """Console entry point: one-line errors, no tracebacks (set PILOTOPT_DEBUG=1 to see them)."""
    _register_commands()
    _one_line_warnings()
    try:
        app(args=argv, prog_name="pilotopt")
    except (PilotoptError, EdgeError) as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - the last line of defence against tracebacks
        if os.environ.get("PILOTOPT_DEBUG"):
            raise
        typer.echo(f"internal error: {one_line(exc)} (rerun with PILOTOPT_DEBUG=1 for details)",
                   err=True)
        sys.exit(1)
