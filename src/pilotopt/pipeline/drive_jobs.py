"""One closed-loop drive of one variant on one circuit: the unit of work of the variant x circuit
matrix. `drive_job(job)` runs in an executor's worker process (a fresh interpreter per job, so a
runtime is timed without another one loaded beside it, and a crashing runtime takes only its own
job down), writes its record and trajectory plot atomically, and returns the record."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

SCHEMA = "pilotopt.closed_loop/1"


def job_key(job: dict) -> str:
    """What decides a drive's result: the variant's artifact and record, and the drive settings."""
    keep = {k: job[k] for k in ("variant", "runtime", "circuit", "direction", "mode", "laps", "timeout_s",
                                "latency_scale", "seed", "threads", "videos", "artifact_sha256")}
    if job.get("contract"):
        from pilotopt.contracts import load_contract

        keep["contract"] = load_contract(job["contract"]).digest
    return hashlib.sha256(json.dumps(keep, sort_keys=True).encode()).hexdigest()[:16]


def record_path(out_dir: Path, variant: str, circuit: str, direction: str) -> Path:
    return Path(out_dir) / variant / f"{Path(circuit).stem}_{direction}.json"


def cached_record(job: dict) -> dict | None:
    """The record of an identical drive done before, if any (a rerun does not drive again)."""
    path = record_path(Path(job["out_dir"]), job["variant"], job["circuit"], job["direction"])
    try:
        rec = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if rec.get("schema") == SCHEMA and rec.get("key") == job_key(job):
        rec["cached"] = True
        return rec
    return None


def new_record(job: dict) -> dict:
    """A failed record for `job` (fields filled in as the drive succeeds)."""
    return {"schema": SCHEMA, "key": job_key(job), "variant": job["variant"], "framework": job["framework"],
            "runtime": job["runtime"], "circuit": job["circuit"], "direction": job["direction"],
            "mode": job["mode"], "status": "failed", "reason": None, "metrics": None, "plot": None,
            "video": None, "cached": False}


def drive_job(job: dict) -> dict:
    """Load the variant, drive it, write <variant>/<circuit>_<direction>.json (+ .png, + .mp4)."""
    from pilotopt.atomic import write_json

    out = record_path(Path(job["out_dir"]), job["variant"], job["circuit"], job["direction"])
    out.parent.mkdir(parents=True, exist_ok=True)
    rec = new_record(job)
    t0 = time.perf_counter()
    try:
        rec.update(_drive(job, out))
        rec["status"] = "ok"
    except Exception as exc:  # noqa: BLE001 - a variant that cannot drive is that variant's failure
        from pilotopt.runtimes._util import short_error

        rec["reason"] = short_error(exc, limit=300)
        if type(exc).__name__ == "RuntimeUnavailable":
            rec["status"] = "skipped"
    rec["job_seconds"] = round(time.perf_counter() - t0, 3)
    write_json(out, rec)
    return rec


def _drive(job: dict, out: Path) -> dict:
    from pilotopt.artifacts import load_artifact_predictor, open_artifact
    from pilotopt.sim.brains.model import ModelBrain
    from pilotopt.sim.closed_loop import DriveConfig, drive
    from pilotopt.sim.plots import plot_trajectory, trajectory_title

    art = open_artifact(job["artifact"], arch=job.get("arch"), arch_args=job.get("arch_args") or None,
                        contract=job.get("contract"))
    predictor = load_artifact_predictor(art, runtime=job["runtime"], threads=job["threads"])
    brain = ModelBrain(predictor, label=job["variant"])
    cfg = DriveConfig(circuit=job["circuit"], direction=job["direction"], mode=job["mode"], laps=job["laps"],
                      timeout=job["timeout_s"], latency_scale=job["latency_scale"], seed=job["seed"],
                      video_every=2 if job["videos"] else 0)
    result = drive(brain, cfg)
    metrics = {k: (v.value if hasattr(v, "value") else v) for k, v in result.metrics.items()}
    plot = out.with_suffix(".png")
    plot_trajectory(result, plot, title=trajectory_title(result))
    done = {"metrics": metrics, "plot": plot.name, "brain": result.brain,
            "outputs_out_of_range_share": round(brain.out_of_range_share, 4)}
    if job["videos"] and result.frames:
        from pilotopt.sim.video import write_video

        video = out.with_suffix(".mp4")
        write_video(result.frames, video, fps=15.0)
        done["video"] = video.name
    if metrics.get("error"):
        done["reason"] = f"the runtime failed while driving: {metrics['error']}"
    return done
