"""`pilotopt target check TARGET`: reach a device, say what it is and what it can run."""

from __future__ import annotations

import typer
from pilotopt_edge.runtimes import EXTRAS

from pilotopt.targets import parse_target

app = typer.Typer(help="Target devices: measure latency where the car runs (SSH or a Ray node).",
                  no_args_is_help=True)

TargetHelp = ("A device to time the variants on: ssh://user@host[:port][?python=PATH&threads=N&identity=KEY] "
              "or ray:RESOURCE (a Ray node started with that custom resource). See `pilotopt target check`.")


@app.command("check")
def check_cmd(target: str = typer.Argument(..., help=TargetHelp)) -> None:
    """Connect to TARGET and report the device (CPU, cores, architecture, OS, Python) and the
    runtimes the edge package finds there; one line says what is missing and how to install it."""
    t = parse_target(target)
    report = t.describe()
    d = report.device
    typer.echo(f"{t.name}: {d.hostname}, {d.cpu}, {d.cores} cores, {d.machine}, {d.system}, Python {d.python}"
               + (f", emulated by {d.emulated}" if d.emulated else "") + (f", Ray node {d.node_id}" if d.node_id else ""))
    typer.echo(f"  pilotopt-edge {report.edge_version}, {t.threads} thread(s) per model")
    for name, version in sorted(report.runtimes.items()):
        typer.echo(f"  {name}: {version or 'not installed'}")
    missing = report.missing()
    if missing:
        extras = ",".join(EXTRAS[m][1] for m in missing if m in EXTRAS)
        typer.echo(f"missing: {', '.join(missing)} (variants on them are not runnable there): "
                   f"pip install 'pilotopt-edge[{extras}]' on the device")
    else:
        typer.echo("every runtime of the edge package is installed there")
