"""Closed-loop drives as jobs. A drive is one variant on one circuit, direction, condition and
repetition; `drive_variant(job)` runs all drives of one variant in one worker process (frameworks
imported and the model loaded once, so a drive costs its simulation, not a Python start-up; a
crashing runtime still takes down only its own variant), and drives with emulated latency step
together, K cars with one batched model call per brain step (sim.closed_loop.drive_many). Each
drive's record (and plot, video) is
written atomically as soon as it ends, so a killed run keeps the drives it finished, and an identical
drive is never run again (`cached_record`). `drive_job(drive)` runs a single drive."""

from __future__ import annotations

import hashlib
import json
import re
import time
from pathlib import Path

from pilotopt.artifacts import open_artifact
from pilotopt.atomic import write_json
from pilotopt.contracts import load_contract
from pilotopt.errors import one_line
from pilotopt.records import DRIVE_SCHEMA, SIM_VERSION, Drive, DriveJob
from pilotopt.runtimes import load_artifact_predictor
from pilotopt.sim.brains.model import ModelBrain
from pilotopt.sim.conditions import parse_condition
from pilotopt.sim.video import write_video

SCHEMA = DRIVE_SCHEMA  # each drive's file is a records.Drive
_KEY_FIELDS = ("variant", "runtime", "circuit", "direction", "mode", "laps", "timeout_s", "latency_scale", "seed",
               "threads", "videos", "artifact_sha256", "condition", "repetition", "interventions", "latency")


def _latency_digest(drive: DriveJob) -> str | None:
    samples = drive.latency_samples_ms
    if not samples:
        return None
    return hashlib.sha256(json.dumps([round(float(x), 6) for x in samples]).encode()).hexdigest()[:16]


def job_key(drive: DriveJob) -> str:
    """What decides a drive's result: the variant's artifact and record, and the drive settings."""
    keep = drive.model_dump(mode="json", include=set(_KEY_FIELDS))
    keep["latency_samples"] = _latency_digest(drive)
    keep["sim_version"] = SIM_VERSION
    if drive.contract:
        keep["contract"] = load_contract(drive.contract).digest
    return hashlib.sha256(json.dumps(keep, sort_keys=True).encode()).hexdigest()[:16]


def condition_slug(condition: str | None) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", condition or "default")


def record_path(out_dir: Path, variant: str, circuit: str, direction: str, condition: str | None = None,
                repetition: int = 0) -> Path:
    """<variant>/<circuit>_<direction>.json for the default condition's first drive, else
    <circuit>_<direction>__<condition>__r<k>.json."""
    stem = f"{Path(circuit).stem}_{direction}"
    if (condition or "default") != "default" or repetition:
        stem += f"__{condition_slug(condition)}__r{int(repetition)}"
    return Path(out_dir) / variant / f"{stem}.json"


def drive_record_path(drive: DriveJob) -> Path:
    return record_path(Path(drive.out_dir), drive.variant, drive.circuit, drive.direction, drive.condition,
                       drive.repetition)


def cached_record(drive: DriveJob) -> dict | None:
    """The record of an identical drive done before, if any (a rerun does not drive again)."""
    try:
        rec = json.loads(drive_record_path(drive).read_text())
    except (OSError, ValueError):
        return None
    if rec.get("schema") == SCHEMA and rec.get("key") == job_key(drive):
        rec["cached"] = True
        return rec
    return None


def latency_scales(drive: DriveJob) -> dict:
    """How much slower than measured this drive's brain runs, from the parsed condition (never from
    its name): the condition's own factor, the factor applied (x the run's `latency_scale`; None
    when the mode ignores latency), and whether latency is all the condition changes."""
    cond = parse_condition(drive.condition)
    realtime = drive.mode == "realtime"
    return {"condition_latency_scale": cond.latency_scale,
            "latency_scale_applied": drive.latency_scale * cond.latency_scale if realtime else None,
            "slowdown_only": cond.slowdown_only}


def new_record(drive: DriveJob) -> dict:
    """A failed record for `drive` (fields filled in as the drive succeeds)."""
    return {"schema": SCHEMA, "key": job_key(drive), "variant": drive.variant, "framework": drive.framework,
            "runtime": drive.runtime, "circuit": drive.circuit, "direction": drive.direction,
            "mode": drive.mode, "condition": drive.condition, "repetition": drive.repetition,
            **latency_scales(drive), "status": "failed",
            "reason": None, "metrics": None, "plot": None, "video": None, "cached": False}


def drive_job(drive: DriveJob) -> dict:
    """One drive in this process: load the variant, drive it, write its record."""
    return _run_drives([drive], {})[0]


def drive_variant(job: dict, loaded: dict | None = None) -> list[dict]:
    """Every drive in `job["drives"]` (one variant), the model loaded once (`loaded`: kept across
    calls, e.g. by a breaking-point search's probes); cached drives are returned as they are.
    Drives whose latency is emulated are driven together, up to MAX_CARS cars at once with one
    batched model call per brain step (sim.closed_loop.drive_many); drives with wall-clock latency
    one at a time."""
    from pilotopt.sim.closed_loop import batchable  # scipy: imported on first use, not with this module

    loaded = {} if loaded is None else loaded
    drives: list[DriveJob] = job["drives"]
    out: list[dict | None] = [cached_record(d) for d in drives]
    todo = [i for i, rec in enumerate(out) if rec is None]
    together = [i for i in todo if batchable(_config(drives[i]))]
    for start in range(0, len(together), MAX_CARS):
        group = together[start:start + MAX_CARS]
        for i, rec in zip(group, _run_drives([drives[i] for i in group], loaded)):
            out[i] = rec
    for i in todo:
        if out[i] is None:
            out[i] = _run_drives([drives[i]], loaded)[0]
    return out  # type: ignore[return-value]


MAX_CARS = 64  # drives of one variant stepped together in one process


def _run_drives(drives: list[DriveJob], loaded: dict) -> list[dict]:
    """Drive `drives` (one variant) together and write each record as soon as all are done; a
    variant that cannot load or drive fails every one of them with its reason."""
    # matplotlib and scipy: imported on first use, not with this module
    from pilotopt.sim.closed_loop import drive as drive_one, drive_many

    paths = [drive_record_path(d) for d in drives]
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
    recs = [new_record(d) for d in drives]
    written = [False] * len(drives)
    t0 = time.perf_counter()

    def write(i: int, t_start: float) -> None:
        recs[i]["job_seconds"] = round(time.perf_counter() - t_start, 3)
        Drive.from_json(recs[i], f"the drive record of {drives[i].variant}")  # every field declared in records
        write_json(paths[i], recs[i])
        written[i] = True

    try:
        predictor = _predictor(drives[0], loaded)
        brains = [ModelBrain(predictor, label=d.variant) for d in drives]
        configs = [_config(d) for d in drives]

        def done(i: int, result) -> None:  # written as soon as it ends: a killed worker keeps it
            t_finish = time.perf_counter()
            recs[i].update(_finish(drives[i], paths[i], brains[i], result))
            recs[i]["status"] = "ok"
            # alone: the whole job (the model's load included); together: its share of the driving, and its plot
            write(i, t0 if len(drives) == 1 else t_finish - result.metrics.wall_seconds)

        if len(drives) == 1:
            done(0, drive_one(brains[0], configs[0]))
        else:
            drive_many(brains, configs, on_done=done)
    except Exception as exc:  # noqa: BLE001 - a variant that cannot drive is that variant's failure
        for i, rec in enumerate(recs):
            if not written[i]:
                rec["reason"] = one_line(exc, limit=300)
                if type(exc).__name__ == "RuntimeUnavailable":
                    rec["status"] = "skipped"
                write(i, t0)
    return recs


def _predictor(drive: DriveJob, loaded: dict):
    key = (drive.artifact, drive.runtime, drive.threads, json.dumps(drive.contract))
    if key not in loaded:
        loaded.clear()
        art = open_artifact(drive.artifact, arch=drive.arch, arch_args=drive.arch_args or None,
                            contract=drive.contract)
        loaded[key] = load_artifact_predictor(art, runtime=drive.runtime, threads=drive.threads)
    return loaded[key]


def _config(drive: DriveJob):
    from pilotopt.sim.closed_loop import DriveConfig  # scipy: imported on first use, not with this module

    samples = drive.latency_samples_ms if drive.latency == "distribution" else None
    return DriveConfig(circuit=drive.circuit, direction=drive.direction, mode=drive.mode, laps=drive.laps,
                       timeout=drive.timeout_s, latency_scale=drive.latency_scale, seed=drive.seed,
                       condition=drive.condition, repetition=drive.repetition, interventions=drive.interventions,
                       latency_samples=[x / 1000.0 for x in samples] if samples else None,
                       video_every=2 if drive.videos else 0)


def _finish(drive: DriveJob, out: Path, brain: ModelBrain, result) -> dict:
    """What a finished drive adds to its record: metrics, brain, plot and video."""
    from pilotopt.sim.plots import plot_trajectory, trajectory_title  # matplotlib: imported on first use

    done = {"metrics": result.metrics.to_json(), "brain": result.brain,
            "outputs_out_of_range_share": round(brain.out_of_range_share, 4)}
    if drive.plot:
        plot = out.with_suffix(".png")
        plot_trajectory(result, plot, title=trajectory_title(result))
        done["plot"] = plot.name
    if drive.videos and result.frames:
        video = out.with_suffix(".mp4")
        write_video(result.frames, video, fps=15.0)
        done["video"] = video.name
    if result.metrics.error:
        done["reason"] = f"the runtime failed while driving: {result.metrics.error}"
    return done
