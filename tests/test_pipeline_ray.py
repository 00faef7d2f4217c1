"""`pilotopt run --executor ray` on a local Ray cluster of real nodes started here: training,
technique and drive jobs run as tasks on more than one node (their node ids in OUT/jobs.json); a
node killed while a technique job runs on it costs that job one retry on a node still alive; a
rerun resumes (nothing built again); a node that cannot see the run folder is refused in one line."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'pilotopt[ray]')")

CONFIG = """\
profile: quick
threads: 2
data:
  circuits: [nurburgring, simple]
  directions: [anticlockwise]
  laps: 0.05
  test_circuits: [simple]
  workers: 1
train:
  frameworks: [torch]
  model: pilotnet_student
  epochs: 1
techniques: [torch, torch_prune_global, onnx_fp32, torch_dynamic]
technique_defaults: {epochs: 1, max_train_frames: 32}
offline: {max_frames: 16, min_calls: 5, min_seconds: 0.02, throughput_batch: 8, peak_seconds: 0}
closed_loop: {timeout_s: 2.0, repeats: 1, conditions: [], shortlist: 1, breaking_points: false}
executor: {workers: 2, build_workers: 2}
"""


def _command(cfg: Path, out: Path, address: str) -> list[str]:
    """`--out` relative to the working directory (run from out.parent), as `make demo` passes it:
    the tasks on other nodes still find every path."""
    return [sys.executable, "-m", "pilotopt", "run", "--config", str(cfg), "--out", out.name, "--executor", "ray",
            "--address", address]


def _ledger(out: Path) -> dict:
    try:
        return json.loads((out / "jobs.json").read_text())
    except (OSError, ValueError):
        return {"jobs": []}


def _running_on(out: Path, node_id: str) -> list[dict]:
    found = []
    for path in (out / "running").glob("*.json"):
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if doc.get("node_id") == node_id:
            found.append(doc)
    return found


@pytest.fixture(scope="module")
def cluster():
    from ray.cluster_utils import Cluster

    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    try:
        yield c
    finally:
        c.shutdown()


def test_every_stage_runs_on_the_cluster_a_killed_node_costs_one_retry_and_a_rerun_resumes(cluster, tmp_path):
    head = cluster.head_node.node_id
    second = cluster.add_node(num_cpus=1)
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(CONFIG)
    out = tmp_path / "out"
    log = (tmp_path / "run.log").open("w")
    proc = subprocess.Popen(_command(cfg, out, cluster.address), stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
    # Kill the second node while it runs a technique job: once it has finished a job there (the
    # training or a technique), or else once most technique jobs are done (with one CPU per node
    # and two jobs at once, each node always holds one of the two while two are left).
    deadline, killed, third = time.monotonic() + 600, None, None
    while proc.poll() is None and time.monotonic() < deadline:
        finished = _ledger(out)["jobs"]
        done_there = [j for j in finished if j["node_id"] == second.node_id]
        techniques_done = [j for j in finished if j["stage"] == "optimize"]
        busy = [j for j in _running_on(out, second.node_id) if j["stage"] == "optimize"]
        if busy and (done_there or len(techniques_done) >= 2):
            killed = busy[0]["job"]
            cluster.remove_node(second, allow_graceful=False)
            third = cluster.add_node(num_cpus=1)  # the drives spread over the head and this one
            break
        time.sleep(0.05)
    assert killed, "the second node never ran a technique job; log:\n" + (tmp_path / "run.log").read_text()[-3000:]
    assert proc.wait(timeout=600) == 0, (tmp_path / "run.log").read_text()[-4000:]
    assert (out / "report" / "report.md").exists()

    jobs = _ledger(out)["jobs"]
    by_stage: dict[str, set] = {}
    for j in jobs:
        by_stage.setdefault(j["stage"].split(" (")[0], set()).add(j["node_id"])
    assert by_stage["train"] <= {head, second.node_id, third.node_id}
    assert head in by_stage["optimize"] and {head, third.node_id} <= by_stage["closed loop"]
    again = [j for j in jobs if j["job"] == killed and j["stage"] == "optimize"]
    assert len(again) == 1 and again[0]["status"] == "ok" and again[0]["attempts"] == 2, again
    # the second node ran it until it was killed; a node still alive built it
    assert again[0]["node_id"] != second.node_id and second.node_id[:12] in again[0]["node_losses"][0]
    assert all(j["status"] == "ok" for j in jobs), [j for j in jobs if j["status"] != "ok"]
    assert not list((out / "running").glob("*.json"))  # nothing is left marked as running
    variants = {p.parent.name: p.stat().st_mtime_ns for p in (out / "variants").glob("*/variant.json")}
    assert {"torch", "torch_prune_global", "onnx_fp32", "torch_dynamic"} <= set(variants)
    latency_host = json.loads((out / "offline" / "results.json").read_text())["machine"]["host"]
    assert _ledger(out)["latency_measured_on"]["host"] == latency_host

    # The rerun resumes: every baseline, variant and drive is reused, nothing is built again.
    model = out / "train" / "torch" / "metrics.json"
    model_stamp = model.stat().st_mtime_ns
    rerun = subprocess.run(_command(cfg, out, cluster.address), capture_output=True, text=True, timeout=600,
                           cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert model.stat().st_mtime_ns == model_stamp
    assert {p.parent.name: p.stat().st_mtime_ns for p in (out / "variants").glob("*/variant.json")} == variants
    assert not any(j["stage"].startswith("closed loop") for j in _ledger(out)["jobs"])  # every drive was reused


def test_a_node_that_cannot_see_the_run_folder_is_one_line(tmp_path):
    from pilotopt.errors import BadInputError
    from pilotopt.pipeline.executors import check_shared_folder

    class BlindRay:  # a "cluster" whose one node reads another filesystem: the probe finds no token
        @staticmethod
        def nodes():
            return [{"Alive": True, "NodeID": "ab" * 28}]

        @staticmethod
        def remote(**_):
            return lambda fn: _Probe()

        @staticmethod
        def get(refs):
            return [{"node_id": "ab" * 28, "host": "worker-7", "pid": 1, "sees": False} for _ in refs]

    class _Probe:
        def options(self, **_):
            return self

        def remote(self, path):
            assert Path(path).exists()  # the token is there on this machine while the probe runs
            return path

    with pytest.raises(BadInputError) as err:
        check_shared_folder(BlindRay, tmp_path / "out")
    msg = str(err.value)
    assert "worker-7" in msg and str(tmp_path / "out") in msg and "same path" in msg and "\n" not in msg
    assert not list((tmp_path / "out").glob(".pilotopt-shared-*"))  # the token is removed
