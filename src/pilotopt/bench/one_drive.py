"""One drive in a fresh interpreter, as a drive ran before cars shared a process: import the
runtime, load the variant, warm up, drive, reply. `pilotopt bench closed-loop` times a few of these
as the process-per-drive reference: `python -m pilotopt.bench.one_drive JOB.json REPLY.json`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pilotopt.atomic import write_json


def run(job: dict) -> dict:
    # the runtimes and the simulator: what a drive's process imports, counted in its cost
    from pilotopt.artifacts import open_artifact
    from pilotopt.frameworks import import_torch
    from pilotopt.runtimes import load_artifact_predictor
    from pilotopt.sim.brains.model import ModelBrain
    from pilotopt.sim.closed_loop import DriveConfig, drive
    from pilotopt.sim.vehicle import VehicleLimits

    import_torch(job["threads"])
    art = open_artifact(job["artifact"], arch=job["arch"], arch_args=job["arch_args"] or None,
                        contract=job["contract"])
    predictor = load_artifact_predictor(art, runtime=job["runtime"], threads=job["threads"])
    result = drive(ModelBrain(predictor, label=job["variant"]), DriveConfig(**{**job["config"], "limits": VehicleLimits(**job["config"]["limits"])}))
    return result.metrics.to_json()  # a records.DriveMetrics


if __name__ == "__main__":
    write_json(Path(sys.argv[2]), run(json.loads(Path(sys.argv[1]).read_text())))
