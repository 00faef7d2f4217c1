"""`pilotopt sim ...`: circuits, driving a brain, dataset generation."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from pilotopt.atomic import ensure_writable_dir, write_json
from pilotopt.cli.model_options import ArchArgsOption, ArchOption, InputOption, open_model, warn_out_of_range
from pilotopt.cli.progress import out as stdout, progress_bar
from pilotopt.errors import BadInputError
from pilotopt.runtimes import load_artifact_predictor
from pilotopt.sim.appearance import variant_names
from pilotopt.sim.brains import brain_names, make_brain
from pilotopt.sim.brains.model import ModelBrain
from pilotopt.sim.camera import CameraModel
from pilotopt.sim.conditions import condition_kinds
from pilotopt.sim.ros_bridge import BridgeConfig, run_bridge
from pilotopt.sim.video import write_video

app = typer.Typer(help="The built-in follow-line simulator: circuits, driving, datasets.", no_args_is_help=True)


def _split(values: Optional[list[str]]) -> tuple[str, ...]:
    out: list[str] = []
    for v in values or []:
        out.extend(x.strip() for x in v.split(",") if x.strip())
    return tuple(out)


@app.command("list")
def list_cmd() -> None:
    """List built-in circuits (with lap lengths), brains and visual variants."""
    # scipy: imported on first use, not with this module
    from pilotopt.sim.circuits import circuit_names, circuit_spec, load_circuit

    table = Table(title="circuits (each drivable clockwise and anticlockwise)")
    for col in ("name", "length (m)", "min radius (m)", "resembles"):
        table.add_column(col)
    for name in circuit_names():
        track = load_circuit(name)
        table.add_row(name, f"{track.length:.0f}", f"{track.min_radius():.1f}", circuit_spec(name).description)
    stdout.print(table, soft_wrap=True)
    typer.echo("brains: " + ", ".join(brain_names()))
    typer.echo("visual variants (combine with '+'): " + ", ".join(variant_names()))

    ct = Table(title="conditions (--condition, closed_loop.conditions; name[:level], combine with '+')")
    for col in ("name", "what it changes", "level (default)"):
        ct.add_column(col)
    for name, kind in sorted(condition_kinds().items()):
        ct.add_row(name, kind.description, f"{kind.level} ({kind.default_level:g})" if kind.level else "-")
    stdout.print(ct, soft_wrap=True)
    typer.echo("user circuits: pass a CSV of x,y centre-line points (metres, closed loop) as --circuit")


@app.command("drive")
def drive_cmd(
    brain: str = typer.Option("expert", help="Who drives: expert (privileged) or classic (colour mask + PD); ignored with --model."),
    model: Optional[Path] = typer.Option(None, help="Drive a model: any file pilotopt reads (checkpoint, state dict "
                                                    "with --arch, TorchScript, .pt2, ONNX, .h5, SavedModel, .tflite, "
                                                    "OpenVINO .xml) or a training output folder."),
    runtime: Optional[str] = typer.Option(None, help="Runtime for --model (default: detected from the file)."),
    arch: Optional[str] = ArchOption,
    arch_args: Optional[str] = ArchArgsOption,
    input_: Optional[str] = InputOption,
    circuit: str = typer.Option("simple", help="Built-in circuit name or a CSV file of x,y points."),
    direction: str = typer.Option("anticlockwise", help="anticlockwise or clockwise."),
    mode: str = typer.Option("lockstep", help="lockstep (sim waits for the brain) or realtime."),
    laps: int = typer.Option(1, min=1, help="Laps to drive."),
    latency: Optional[float] = typer.Option(None, help="realtime: fixed brain latency in seconds."),
    latency_scale: float = typer.Option(1.0, help="realtime: measured latency x this (emulate slower hardware)."),
    latency_samples: Optional[Path] = typer.Option(None, help="realtime, reproducible: draw each latency (seeded) from "
                                                             "these brain-step samples: a JSON list of ms, a "
                                                             "`pilotopt-edge bench --out` file from the device, or "
                                                             "an offline results.json with --model's variant in it."),
    condition: str = typer.Option("default", help="Driving condition, e.g. dusk, gaussian:10, slow:5, lag:0.2 "
                                                  "(see `sim list`)."),
    repetition: int = typer.Option(0, min=0, help="0: the canonical start; k: a seeded start point, offset and "
                                                  "sensor noise (as the pipeline's repetitions)."),
    interventions: bool = typer.Option(False, "--interventions", help="Put the car back on the line when it is more "
                                                                      "than 1 m off, instead of ending the run."),
    look: str = typer.Option("default", help="Visual variant, e.g. white_line+dark (see `sim list`)."),
    seed: int = typer.Option(0, help="Seed for sensor noise and textures."),
    timeout: Optional[float] = typer.Option(None, help="Sim seconds before giving up (default 1.5 x reference lap time)."),
    plot: Optional[Path] = typer.Option(None, help="Write a trajectory plot (PNG)."),
    video: Optional[Path] = typer.Option(None, help="Write a lap video (.mp4 or .gif)."),
    video_every: int = typer.Option(2, min=1, help="Keep every k-th camera frame in the video."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the run's metrics as JSON."),
) -> None:
    """Drive one brain around one circuit and print the closed-loop metrics."""
    # scipy: imported on first use, not with this module
    from pilotopt.sim.closed_loop import DriveConfig, drive

    for out in (plot, video, json_out):
        if out is not None:
            ensure_writable_dir(out.parent)
    if video is not None and video.suffix.lower() not in (".mp4", ".gif"):
        raise BadInputError(f"unsupported video format '{video.suffix}'; use .mp4 or .gif")
    cfg = DriveConfig(circuit=circuit, direction=direction, mode=mode, laps=laps, latency=latency,
                      latency_scale=latency_scale, look=look, seed=seed, timeout=timeout,
                      latency_samples=_samples(latency_samples, model) if latency_samples else None,
                      condition=condition, repetition=repetition, interventions=interventions,
                      video_every=video_every if video else 0)
    cfg.validate()
    if model is None and (input_ or arch or arch_args or runtime):
        given = ", ".join(n for n, v in (("--input", input_), ("--arch", arch), ("--arch-args", arch_args),
                                         ("--runtime", runtime)) if v)
        raise BadInputError(f"{given} describe a model, but brain '{brain}' is not one; pass --model FILE to drive "
                            "a model, or drop them")
    if model is not None:
        art = open_model(model, arch, arch_args, input_)
        b = ModelBrain(load_artifact_predictor(art, runtime), label=str(model))
        brain = f"model {model.name}"
    else:
        b = make_brain(brain)
    # scipy: imported on first use, not with this module
    from pilotopt.sim.circuits import load_circuit

    track = load_circuit(circuit, cfg.direction)
    goal = track.length * laps
    with progress_bar(f"{brain} on {track.name} ({cfg.direction}, {mode})", total=round(goal)) as update:
        result = drive(b, cfg, on_tick=lambda sim: update(min(goal, max(0.0, sim.progress))) if sim.tick % 20 == 0 else None)
        update(min(goal, max(0.0, result.metrics.completed_distance)))
    _print_metrics(result.metrics)
    if model is not None:
        warn_out_of_range(b.out_of_range_share, art.contract.name, "the model's commands in this drive")
    if json_out:
        write_json(json_out, result.to_json())
        typer.echo(f"metrics: {json_out}")
    if plot:
        # matplotlib: imported on first use, not with this module
        from pilotopt.sim.plots import plot_trajectory

        plot_trajectory(result, plot)
        typer.echo(f"plot: {plot}")
    if video:
        write_video(result.frames, video, fps=cfg_fps(video_every))
        typer.echo(f"video: {video}")


def _samples(path: Path, model: Optional[Path]) -> list[float]:
    """Brain-step latencies in seconds from a JSON list of ms, a `pilotopt-edge bench --out` file
    (measured on the device) or an offline results.json."""
    import json

    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise BadInputError(f"latency samples '{path}': not readable JSON ({exc}); pass a JSON list of ms or an "
                            "offline results.json") from None
    if isinstance(doc, dict) and str(doc.get("schema", "")).startswith("pilotopt-edge.bench/"):
        doc = doc.get("brain_step_samples_ms")
    elif isinstance(doc, dict):
        rows = [r for r in doc.get("variants", []) if r.get("brain_step_samples_ms")]
        if model is not None:
            mine = [r for r in rows if r.get("artifact") and Path(r["artifact"]).resolve() == model.resolve()]
            rows = mine or [r for r in rows if r.get("name") == model.parent.name]
        if len(rows) != 1:
            raise BadInputError(f"latency samples '{path}': expected one variant with brain-step samples "
                                f"{'for ' + str(model) if model else ''}, found {len(rows)}; pass a JSON list of ms")
        doc = rows[0]["brain_step_samples_ms"]
    if not isinstance(doc, list) or not doc or not all(isinstance(x, (int, float)) and x >= 0 for x in doc):
        raise BadInputError(f"latency samples '{path}': expected a non-empty list of milliseconds >= 0")
    return [float(x) / 1000.0 for x in doc]


def cfg_fps(video_every: int) -> float:
    return CameraModel().fps / video_every


def _print_metrics(metrics) -> None:
    m = metrics.to_json()  # every figure by name, as the table lists them
    table = Table(title="closed-loop metrics")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in ("termination", "lap_completed", "lap_seconds", "completed_distance", "percentage_completed",
                "average_speed", "position_deviation_mae", "position_deviation_max", "mean_inference_time",
                "brain_iterations_frequency", "real_time_factor", "suddenness", "deadline_misses", "interventions",
                "autonomy", "driving_score", "bm_position_deviation", "latency_source", "condition", "error"):
        v = m.get(key)
        if v is None and key == "error":
            continue
        table.add_row(key, f"{v:.3f}" if isinstance(v, float) else str(v))
    stdout.print(table)


@app.command("ros-bridge")
def ros_bridge_cmd(
    circuit: str = typer.Option("simple", help="Built-in circuit name or a CSV file of x,y points."),
    direction: str = typer.Option("anticlockwise", help="anticlockwise or clockwise."),
    duration: float = typer.Option(30.0, help="Seconds of sim time to drive, in real time (the run ends earlier "
                                              "when the laps are done or the car leaves the road)."),
    laps: int = typer.Option(1, min=1, help="Laps after which the run ends."),
    camera_topic: str = typer.Option("/F1ROS/cameraL/image_raw", help="sensor_msgs/Image (rgb8) topic the camera "
                                                                       "frames are published on."),
    cmd_topic: str = typer.Option("/F1ROS/cmd_vel", help="geometry_msgs/Twist topic the commands are read from "
                                                         "(linear.x m/s, angular.z rad/s)."),
    rate: float = typer.Option(20.0, help="Camera frames per second."),
    interventions: bool = typer.Option(False, "--interventions", help="Put the car back on the line when it is more "
                                                                      "than 1 m off, instead of ending the run."),
    look: str = typer.Option("default", help="Visual variant, e.g. white_line+dark (see `sim list`)."),
    seed: int = typer.Option(0, help="Seed for textures."),
    wait: float = typer.Option(30.0, help="Seconds to wait for the node's first command before the clock starts."),
    out: Optional[Path] = typer.Option(None, help="Write the run's metrics as JSON."),
) -> None:
    """Put the simulator on ROS 1 topics: publish the car's camera, drive with the Twist commands a
    node sends back (e.g. `pilotopt-edge ros DEPLOY_DIR`), in real time, and print the closed-loop
    metrics. Needs a running roscore (ROS_MASTER_URI) and rospy (`make ros`)."""
    if out is not None:
        ensure_writable_dir(out.parent)
    cfg = BridgeConfig(circuit=circuit, direction=direction, duration=duration, laps=laps,
                       camera_topic=camera_topic, cmd_topic=cmd_topic, rate=rate, interventions=interventions,
                       look=look, seed=seed, wait_s=wait)
    result = run_bridge(cfg, log=typer.echo)
    m = result.metrics
    table = Table(title=f"closed-loop metrics over ROS ({cfg.camera_topic} -> {cfg.cmd_topic})")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in ("termination", "sim_seconds", "lap_completed", "completed_distance", "percentage_completed",
                "average_speed", "position_deviation_mae", "position_deviation_max", "off_track", "interventions",
                "autonomy", "driving_score", "frames_published", "commands_received", "command_rate",
                "real_time_factor"):
        v = getattr(m, key)
        table.add_row(key, f"{v:.3f}" if isinstance(v, float) else str(v))
    stdout.print(table)
    if out:
        write_json(out, result.to_json())
        typer.echo(f"metrics: {out}")


@app.command("dataset")
def dataset_cmd(
    out: Path = typer.Option(..., help="Output folder (DeepLearningStudio layout: one folder per recording)."),
    circuits: Optional[list[str]] = typer.Option(None, help="Circuits (comma-separated or repeated); default all built-in."),
    directions: Optional[list[str]] = typer.Option(None, help="Directions; default both."),
    laps: float = typer.Option(1.0, help="Laps per recording (fractions allowed)."),
    seed: int = typer.Option(0, help="Dataset seed: same seed, identical files."),
    look: str = typer.Option("default", help="Visual variant of the frames."),
    noise: bool = typer.Option(True, help="Inject command noise (recovery examples); labels stay clean."),
    noise_rate: float = typer.Option(0.25, help="Perturbation episodes per second of sim time."),
    speed_scale: float = typer.Option(1.0, help="Expert speed multiplier."),
    workers: int = typer.Option(2, min=1, help="Parallel processes (one recording each)."),
) -> None:
    """Generate a training dataset by driving the expert on circuits."""
    # scipy: imported on first use, not with this module
    from pilotopt.sim.circuits import DIRECTIONS
    from pilotopt.sim.dataset import DatasetConfig, NoiseConfig, generate_dataset

    cfg = DatasetConfig(
        circuits=_split(circuits), directions=_split(directions) or DIRECTIONS, laps=laps, seed=seed,
        look=look, noise=NoiseConfig(rate=noise_rate if noise else 0.0), speed_scale=speed_scale,
    ).resolved()
    ensure_writable_dir(out)
    with progress_bar(f"dataset -> {out}") as update:
        summary = generate_dataset(out, cfg, workers=workers, progress=lambda d, t: update(d, t))
    typer.echo(f"{len(summary['recordings'])} recordings in {out} ({summary['generated']} generated, "
               f"{summary['skipped_existing']} already complete, {summary['frames_generated']} frames written)")
