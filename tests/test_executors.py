"""Executors: results in job order, a raising or crashing job fails alone, on_done once per job."""

import os
import socket
import sys
from pathlib import Path

import pytest

from pilotopt.errors import BadInputError
from pilotopt.pipeline.executors import get_executor

import _executor_jobs  # noqa: E402  (tests/ is on sys.path; workers import the job by this name)

TESTS = str(Path(__file__).resolve().parent)
RAY_MISSING = "ray is not installed (pip install 'pilotopt[ray]')"

# ok, raises, segfaults, ok
MIXED = [{"x": 1}, {"x": 2, "mode": "raise"}, {"x": 3, "mode": "segv"}, {"x": 4}]


def _run(ex, jobs):
    calls = []
    results = ex.map(_executor_jobs.job, jobs, on_done=lambda i, job, res: calls.append((i, job, res)))
    return results, calls


def _check_mixed(results, calls):
    assert [r["status"] for r in results] == ["ok", "failed", "failed", "ok"]
    assert results[0]["y"] == 2 and results[3]["y"] == 8
    assert results[1] == {"status": "failed", "reason": "ValueError: job 2 refused"}
    assert "died" in results[2]["reason"] and "\n" not in results[2]["reason"]
    # each job reported once, with the job and the same result map() returns
    assert sorted(i for i, _, _ in calls) == [0, 1, 2, 3]
    for i, job, res in calls:
        assert job is MIXED[i] and res == results[i]
    # every job ran in a fresh process of its own, never in this one
    pids = [results[0]["pid"], results[3]["pid"]]
    assert len(set(pids)) == 2 and os.getpid() not in pids


def test_unknown_executor_names_the_choices():
    with pytest.raises(BadInputError) as err:
        get_executor("dask")
    assert "local" in str(err.value) and "ray" in str(err.value) and "\n" not in str(err.value)


def test_bad_settings_are_one_line_errors():
    with pytest.raises(BadInputError, match="workers"):
        get_executor("local", workers=0)
    with pytest.raises(BadInputError, match="address"):
        get_executor("local", address="auto")


def test_local_runs_in_order_and_isolates_a_raising_and_a_crashing_job():
    results, calls = _run(get_executor("local"), MIXED)
    _check_mixed(results, calls)


def test_local_crash_among_concurrent_jobs_fails_only_its_own_job():
    # Two at once: the segfault breaks the pool while another job runs; the executor must still
    # blame only the crashing job and finish the others.
    jobs = [{"x": 1, "sleep": 0.5}, {"x": 2, "mode": "segv", "sleep": 0.2}, {"x": 3, "sleep": 0.3}, {"x": 4}]
    results, calls = _run(get_executor("local", workers=2), jobs)
    assert [r["status"] for r in results] == ["ok", "failed", "ok", "ok"]
    assert [r.get("y") for r in results] == [2, None, 6, 8]
    assert sorted(i for i, _, _ in calls) == [0, 1, 2, 3]


def test_local_reused_workers_run_job_after_job_and_a_crash_still_fails_only_its_own_job():
    """fresh=False (drives with drawn latency): one worker runs several jobs (frameworks imported
    once), and a segfault among jobs in flight on two workers is still blamed on its own job."""
    results, _ = _run(get_executor("local", workers=1, fresh=False), [{"x": 1}, {"x": 2}, {"x": 3}])
    assert [r["y"] for r in results] == [2, 4, 6] and len({r["pid"] for r in results}) == 1
    assert os.getpid() != results[0]["pid"]
    jobs = [{"x": 1, "sleep": 0.5}, {"x": 2, "mode": "segv", "sleep": 0.2}, {"x": 3, "sleep": 0.3}, {"x": 4}]
    results, calls = _run(get_executor("local", workers=2, fresh=False), jobs)
    assert [r["status"] for r in results] == ["ok", "failed", "ok", "ok"]
    assert [r.get("y") for r in results] == [2, None, 6, 8] and "died" in results[1]["reason"]
    assert sorted(i for i, _, _ in calls) == [0, 1, 2, 3]


def test_ray_missing_is_a_one_line_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` raise ImportError
    with pytest.raises(BadInputError) as err:
        get_executor("ray")
    assert str(err.value) == "the ray executor needs ray: pip install 'pilotopt[ray]'"


def test_ray_unreachable_address_fails_fast_in_one_line():
    pytest.importorskip("ray", reason=RAY_MISSING)
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(BadInputError) as err:
        get_executor("ray", address=f"127.0.0.1:{port}")
    assert "cannot reach the Ray cluster" in str(err.value) and "\n" not in str(err.value)


@pytest.fixture
def ray_started_by_test():
    ray = pytest.importorskip("ray", reason=RAY_MISSING)
    # Workers import the job function by name: give them the tests folder.
    ray.init(address="local", num_cpus=2, include_dashboard=False, runtime_env={"env_vars": {"PYTHONPATH": TESTS}})
    yield ray
    ray.shutdown()


def test_ray_on_an_instance_started_by_the_test(ray_started_by_test):
    results, calls = _run(get_executor("ray"), MIXED)
    _check_mixed(results, calls)
    assert ray_started_by_test.is_initialized()  # not the executor's to shut down


def test_ray_starts_and_shuts_down_its_own_instance(monkeypatch):
    ray = pytest.importorskip("ray", reason=RAY_MISSING)
    assert not ray.is_initialized()
    # The local instance the executor starts inherits this environment, its workers too.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (TESTS, os.environ.get("PYTHONPATH")) if p))
    results, calls = _run(get_executor("ray", workers=1), [{"x": 5}, {"x": 6, "mode": "segv"}])
    assert [r["status"] for r in results] == ["ok", "failed"] and results[0]["y"] == 10
    assert [i for i, _, _ in calls] == [0, 1]  # workers=1: one at a time, in order
    assert not ray.is_initialized()
