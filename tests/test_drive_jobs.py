"""One closed-loop drive as a job: its record, plot and optional video; reuse of an identical drive;
a broken artifact failing alone; and the same job run as a Ray task on a local instance."""

from __future__ import annotations

import json

import pytest
from _fixtures import torch_checkpoint

from pilotopt.pipeline.drive_jobs import cached_record, drive_job, job_key
from pilotopt.records import DriveJob


def _job(model, out_dir, **kw):
    job = {"variant": "torch", "framework": "torch", "runtime": "torch", "artifact": str(model),
           "artifact_sha256": "x", "circuit": "simple", "direction": "anticlockwise", "mode": "realtime", "laps": 1,
           "timeout_s": 3.0, "latency_scale": 1.0, "seed": 0, "threads": 1, "videos": False, "out_dir": str(out_dir)}
    job.update(kw)
    return DriveJob(**job)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return torch_checkpoint(tmp_path_factory.mktemp("drive") / "model.pt", "pilotnet_student")


def test_drive_writes_record_plot_and_video(model, tmp_path):
    rec = drive_job(_job(model, tmp_path, videos=True))
    assert rec["status"] == "ok", rec["reason"]
    m = rec["metrics"]
    assert m["sim_seconds"] == pytest.approx(3.0, abs=0.1) and m["termination"] in ("timeout", "off_track", "stuck")
    assert m["brain_steps"] > 5 and m["brain_iterations_frequency"] > 0 and m["mean_inference_time"] > 0
    folder = tmp_path / "torch"
    on_disk = json.loads((folder / "simple_anticlockwise.json").read_text())
    assert on_disk["key"] == job_key(_job(model, tmp_path, videos=True)) and on_disk["metrics"] == m
    assert (folder / rec["plot"]).stat().st_size > 1000
    assert rec["video"] and (folder / rec["video"]).stat().st_size > 1000


def test_identical_drive_is_reused_and_changed_settings_are_not(model, tmp_path):
    job = _job(model, tmp_path)
    assert cached_record(job) is None
    drive_job(job)
    again = cached_record(job)
    assert again is not None and again["cached"] is True
    assert cached_record(_job(model, tmp_path, latency_scale=2.0)) is None
    assert cached_record(_job(model, tmp_path, artifact_sha256="other")) is None


def test_broken_artifact_fails_alone_with_one_line(tmp_path):
    bad = tmp_path / "model.pt"
    bad.write_bytes(b"not a checkpoint")
    rec = drive_job(_job(bad, tmp_path / "out"))
    assert rec["status"] == "failed" and "\n" not in rec["reason"] and "model.pt" in rec["reason"]
    assert json.loads((tmp_path / "out" / "torch" / "simple_anticlockwise.json").read_text())["status"] == "failed"


def test_drive_as_a_ray_task(model, tmp_path, monkeypatch):
    pytest.importorskip("ray", reason="ray is not installed (pip install 'pilotopt[ray]')")
    import os
    from pathlib import Path

    from pilotopt.pipeline.executors import get_executor

    tests = str(Path(__file__).resolve().parent)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (tests, os.environ.get("PYTHONPATH", "")) if p))
    jobs = [_job(model, tmp_path), _job(model, tmp_path, circuit="nurburgring")]
    results = get_executor("ray", workers=2).map(drive_job, jobs)
    assert [r["status"] for r in results] == ["ok", "ok"]
    assert [r["circuit"] for r in results] == ["simple", "nurburgring"]
    assert (tmp_path / "torch" / "nurburgring_anticlockwise.png").is_file()


def test_one_worker_drives_every_repetition_and_condition_loading_the_model_once(model, tmp_path, monkeypatch):
    import pilotopt.pipeline.drive_jobs as drive_jobs
    from pilotopt.pipeline.drive_jobs import drive_variant

    loads = []
    real = drive_jobs.load_artifact_predictor
    monkeypatch.setattr(drive_jobs, "load_artifact_predictor", lambda *a, **k: loads.append(1) or real(*a, **k))
    drives = [_job(model, tmp_path, repetition=r, condition=c, timeout_s=1.0) for c in ("default", "dusk")
              for r in (0, 1)]
    recs = drive_variant({"variant": "torch", "drives": drives})
    assert [r["status"] for r in recs] == ["ok"] * 4 and len(loads) == 1
    assert [(r["condition"], r["repetition"]) for r in recs] == [("default", 0), ("default", 1), ("dusk", 0),
                                                                  ("dusk", 1)]
    names = sorted(p.name for p in (tmp_path / "torch").glob("*.json"))
    assert names == ["simple_anticlockwise.json", "simple_anticlockwise__default__r1.json",
                     "simple_anticlockwise__dusk__r0.json", "simple_anticlockwise__dusk__r1.json"]
    again = drive_variant({"variant": "torch", "drives": drives})
    assert all(r["cached"] for r in again) and len(loads) == 1  # finished drives are not driven again


def test_a_worker_killed_mid_variant_keeps_its_finished_drives(model, tmp_path, monkeypatch):
    """SIGKILL after the first of three drives: that drive's record is kept (and reused), the
    other two are failed with the worker's death as the reason and are never reused."""
    import os
    from pathlib import Path

    from pilotopt.pipeline.drive_jobs import cached_record
    from pilotopt.pipeline.executors import get_executor
    from pilotopt.pipeline.run import _as_records

    tests = str(Path(__file__).resolve().parent)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (tests, os.environ.get("PYTHONPATH", "")) if p))
    import _executor_jobs

    job = {"variant": "torch", "drives": [_job(model, tmp_path, repetition=r, timeout_s=1.0) for r in range(3)]}
    [result] = get_executor("local").map(_executor_jobs.drive_first_then_die, [job])
    assert result["status"] == "failed" and "died" in result["reason"]
    recs = _as_records(job, result)
    assert [r["status"] for r in recs] == ["ok", "failed", "failed"]
    assert recs[0]["cached"] is True and "died" in recs[1]["reason"]
    assert cached_record(job["drives"][0]) is not None and cached_record(job["drives"][1]) is None


def test_a_breaking_point_search_job_probes_in_one_process_with_the_model_loaded_once(model, tmp_path, monkeypatch):
    """pipeline.breaking.search_job: every probe drives the protocol under slow:S in this process,
    the model loaded once for all of them; the probes' drives are cached like any other."""
    import pilotopt.pipeline.drive_jobs as drive_jobs
    from pilotopt.pipeline.breaking import search_job

    loads = []
    real = drive_jobs.load_artifact_predictor
    monkeypatch.setattr(drive_jobs, "load_artifact_predictor", lambda *a, **k: loads.append(1) or real(*a, **k))
    samples = [5.0, 10.0]
    protocol = [_job(model, tmp_path, repetition=r, timeout_s=2.0, latency="distribution", latency_samples_ms=samples,
                     plot=False) for r in (0, 1)]
    got = search_job({"variant": "torch", "drives": protocol, "cap": 4.0, "resolution": 0.5, "known": None})
    assert got["status"] == "ok"
    probes = got["breaking_point"]["probes"]
    assert probes and [p["scale"] for p in probes][0] == 1.0 and all(p["drives"] == 2 for p in probes)
    assert len(loads) == 1  # one model load for every probe
    names = sorted(p.name for p in (tmp_path / "torch").glob("*.json"))
    assert all("__slow_" in n for n in names) and len(names) == 2 * len(probes)
    again = search_job({"variant": "torch", "drives": protocol, "cap": 4.0, "resolution": 0.5, "known": None})
    assert again == got and len(loads) == 1  # a rerun probes nothing again: every drive is cached
