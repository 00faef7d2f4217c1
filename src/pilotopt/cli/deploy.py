"""`pilotopt deploy`: write a variant for Behavior Metrics, the edge package or a ROS node."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from pilotopt.atomic import ensure_writable_dir
from pilotopt.deploy import deploy_variant


def deploy_cmd(
    variant: Path = typer.Option(..., help="A variant folder (OUT/variants/NAME) or a model file pilotopt opens."),
    target: str = typer.Option(..., help="behavior-metrics (a tree to copy over a Behavior Metrics checkout), edge "
                                         "(a folder for `pilotopt-edge` on the car) or ros (edge + a ROS 1 node)."),
    out: Path = typer.Option(..., help="Folder to write (replaced atomically)."),
    frames: Optional[Path] = typer.Option(None, help="Reference camera frames (640 x 480 PNGs in a folder, or an .npz "
                                                     "with 'frames'); default: 20 frames of the built-in `simple`."),
    n_frames: int = typer.Option(20, min=1, max=500, help="How many reference frames to store."),
    threads: int = typer.Option(1, min=1, help="Threads for computing pilotopt's reference commands."),
) -> None:
    """Write VARIANT in the form TARGET runs, with reference frames and the commands pilotopt gives for them."""
    ensure_writable_dir(out.parent)
    done = deploy_variant(variant, target, out, frames=frames, n_frames=n_frames, threads=threads)
    typer.echo(f"{done['variant']} -> {done['folder']} ({done['target']}): {', '.join(done['files'])}")
    for note in done.get("notes", []):
        typer.echo(f"  {note}")
