"""`pilotopt run` end to end on a tiny configuration, on a local Ray cluster of real nodes started
here: training, technique and drive jobs run as tasks on more than one node (their node ids in
OUT/jobs.json); a node killed while a technique job runs on it costs that job one retry on a node
still alive; the run, killed in the middle, resumes without redoing finished stages; every stage,
the report, and reuse on a second rerun (local). A node that cannot see the run folder is refused
in one line. One pipeline serves every check: a tiny run costs about a minute."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'pilotopt[ray]')")

TINY = """\
profile: quick
threads: 2
data:
  circuits: [nurburgring, simple]
  directions: [anticlockwise]
  laps: 0.08
  test_circuits: [simple]
  workers: 1
train:
  frameworks: [torch]
  model: pilotnet_student
  epochs: 1
techniques: [torch, torch_prune_global, onnx_fp32, tensorrt_fp32]
technique_defaults: {epochs: 1, max_train_frames: 64}
offline: {max_frames: 48, min_calls: 10, min_seconds: 0.05, throughput_batch: 16, peak_seconds: 0.2}
closed_loop: {timeout_s: 4.0, repeats: 2, conditions: [dusk, "slow:30"], shortlist: 1}
executor: {workers: 2, build_workers: 2}
"""


def _run(cfg: Path, out: Path, *extra: str, wait: bool = True):
    """`--out` relative to the working directory, as `make demo` passes it (the tasks on other
    nodes still find every path)."""
    cmd = [sys.executable, "-m", "pilotopt", "run", "--config", str(cfg), "--out", out.name, *extra]
    if wait:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=out.parent)
    log = (out.parent / "first.log").open("w")
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=out.parent)


def _stamp(path: Path) -> int:
    return path.stat().st_mtime_ns


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


@pytest.fixture(scope="module")
def killed_then_resumed(tmp_path_factory, cluster):
    """The run on the cluster: its second node killed while it runs a technique job (a third node
    joins), then the whole run killed once that job was retried and finished elsewhere; then rerun
    on the cluster to the end."""
    root = tmp_path_factory.mktemp("pipeline")
    cfg = root / "tiny.yaml"
    cfg.write_text(TINY)
    out = root / "out"
    head = cluster.head_node.node_id
    second = cluster.add_node(num_cpus=1)
    ray_args = ("--executor", "ray", "--address", cluster.address)
    proc = _run(cfg, out, *ray_args, wait=False)
    log = lambda: (root / "first.log").read_text()[-4000:]  # noqa: E731
    # Kill the second node while it runs a technique job: once it has finished a job there (the
    # training or a technique), or else once most technique jobs are done (with one CPU per node
    # and two jobs at once, each node always holds one of the two while two are left).
    deadline, killed, third = time.monotonic() + 600, None, None
    while proc.poll() is None and time.monotonic() < deadline:
        finished = _ledger(out)["jobs"]
        done_there = [j for j in finished if j["node_id"] == second.node_id]
        techniques_done = [j for j in finished if j["stage"] == "optimize"]
        # a job that runs for seconds: tensorrt_fp32 is skipped (no GPU) before the kill could land
        busy = [j for j in _running_on(out, second.node_id) if j["stage"] == "optimize" and "tensorrt" not in j["job"]]
        if busy and (done_there or len(techniques_done) >= 2):
            killed = busy[0]["job"]
            cluster.remove_node(second, allow_graceful=False)
            third = cluster.add_node(num_cpus=1)  # the drives spread over the head and this one
            break
        time.sleep(0.05)
    assert killed, "the second node never ran a technique job; log:\n" + log()
    # then kill the run itself, once the killed job was built again on a node still alive
    retried = []
    while proc.poll() is None and time.monotonic() < deadline and not retried:
        retried = [j for j in _ledger(out)["jobs"] if j["job"] == killed and j["stage"] == "optimize"]
        time.sleep(0.05)
    assert retried and proc.poll() is None, "the run ended before it could be killed; log:\n" + log()
    first_ledger = _ledger(out)["jobs"]
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "report" / "report.md").exists()  # it really stopped in the middle
    first = out / "variants" / "torch" / "variant.json"
    stamps = {"model": _stamp(out / "train" / "torch" / "metrics.json"), "torch": _stamp(first)}
    leftovers = list(out.rglob(".*.tmp-*"))
    done = _run(cfg, out, *ray_args)
    assert done.returncode == 0, done.stderr[-3000:]
    return {"root": root, "cfg": cfg, "out": out, "stamps": stamps, "log": done.stdout + done.stderr,
            "leftovers": leftovers,
            "jobs": first_ledger + _ledger(out)["jobs"], "killed": killed, "retried": retried,
            "nodes": {"head": head, "second": second.node_id, "third": third.node_id}}


def test_jobs_ran_on_the_cluster_and_a_killed_node_cost_one_retry(killed_then_resumed):
    r = killed_then_resumed
    nodes = r["nodes"]
    by_stage: dict[str, set] = {}
    for j in r["jobs"]:
        by_stage.setdefault(j["stage"].split(" (")[0], set()).add(j["node_id"])
    assert by_stage["train"] <= set(nodes.values())
    assert nodes["head"] in by_stage["optimize"] and {nodes["head"], nodes["third"]} <= by_stage["closed loop"]
    (again,) = r["retried"]
    assert again["status"] == "ok" and again["attempts"] == 2, again
    # the second node ran it until it was killed; a node still alive built it
    assert again["node_id"] != nodes["second"] and nodes["second"][:12] in again["node_losses"][0]
    assert all(j["status"] == "ok" for j in r["jobs"]), [j for j in r["jobs"] if j["status"] != "ok"]
    out = r["out"]
    assert not list((out / "running").glob("*.json"))  # nothing is left marked as running
    latency_host = json.loads((out / "offline" / "results.json").read_text())["machine"]["host"]
    assert _ledger(out)["latency_measured_on"]["host"] == latency_host


def test_resume_does_not_redo_finished_stages(killed_then_resumed):
    r = killed_then_resumed
    out = r["out"]
    assert _stamp(out / "train" / "torch" / "metrics.json") == r["stamps"]["model"]
    assert _stamp(out / "variants" / "torch" / "variant.json") == r["stamps"]["torch"]
    assert "already done" in r["log"]
    assert not list(out.rglob("*.tmp-*"))  # what the killed run was writing is gone, never renamed in
    if r["leftovers"]:
        assert "half-written file(s) left by an interrupted run" in r["log"]


def test_report_lists_every_technique_with_status(killed_then_resumed):
    out = killed_then_resumed["out"]
    md = (out / "report" / "report.md").read_text()
    for name in ("torch", "torch_prune_global", "onnx_fp32", "tensorrt_fp32"):
        assert name in md
    doc = json.loads((out / "report" / "results.json").read_text())
    status = {t["name"]: t["status"] for t in doc["techniques"]}
    assert status["tensorrt_fp32"] == "skipped" and status["torch"] == "ok"
    peaks = doc["offline"]["machine_peaks"]  # measured beside the latencies, on the run's threads
    assert peaks["threads"] == 2 and peaks["fp32_gmacs"] > 0 and peaks["int8_gmacs"] > 0
    torch_row = next(v for v in doc["variants"] if v["name"] == "torch")
    assert 0 < torch_row["peak_share"] == pytest.approx(torch_row["gmacs_per_s"] / peaks["fp32_gmacs"])
    assert (out / "report" / "report.html").is_file() and (out / "report" / "results.csv").is_file()


def test_every_ok_variant_was_driven_on_the_test_circuit(killed_then_resumed):
    out = killed_then_resumed["out"]
    offline = json.loads((out / "offline" / "results.json").read_text())
    ok = [r["name"] for r in offline["variants"] if r["status"] == "ok"]
    assert {"torch", "onnx_fp32"} <= set(ok)
    for name in ok:
        rec = json.loads((out / "closed_loop" / name / "simple_anticlockwise.json").read_text())
        assert rec["status"] == "ok", rec["reason"]
        m = rec["metrics"]
        assert m["brain_steps"] > 10 and m["brain_iterations_frequency"] > 0 and m["real_time_factor"] > 0
        assert (out / "closed_loop" / name / rec["plot"]).is_file()


def test_repetitions_and_conditions_for_the_shortlist(killed_then_resumed):
    out = killed_then_resumed["out"]
    doc = json.loads((out / "report" / "results.json").read_text())
    drives = doc["closed_loop"]
    ok = {r["name"] for r in json.loads((out / "offline" / "results.json").read_text())["variants"]
          if r["status"] == "ok"}
    default = [d for d in drives if d["condition"] == "default"]
    conditioned = [d for d in drives if d["condition"] != "default"]
    shortlisted = {d["variant"] for d in conditioned}
    # every variant screened with one drive; the shortlist gets both repetitions
    assert {d["variant"] for d in default} == ok and len(default) == len(ok) + len(shortlisted)
    assert {d["variant"] for d in default if d["repetition"] == 1} == shortlisted
    assert "torch" in shortlisted and len(shortlisted) == 2  # the baseline and the best candidate
    assert {d["condition"] for d in conditioned} == {"dusk", "slow:30"} and len(conditioned) == 2 * 2 * 2
    # every drive drew its latency from the offline brain-step samples: reproducible
    assert all(d["metrics"]["latency_source"] == "distribution" for d in drives if d["status"] == "ok")
    torch_row = next(v for v in doc["variants"] if v["name"] == "torch")
    assert torch_row["cl_score_lo"] <= torch_row["cl_score_mean"] <= torch_row["cl_score_hi"]
    assert (out / "report" / "figures" / "heatmap.png").is_file()
    assert set(doc["conditions"]) == {"default", "dusk", "slow:30"}
    # breaking points of the decision's variants, searched with their own drives (kept out of the gate)
    points = {b["name"]: b for b in doc["breaking_points"]}
    assert points["torch"]["role"] == "baseline" and points["torch"]["probes"]
    assert not any(d["condition"].startswith("slow:") and d["condition"] != "slow:30" for d in drives)


CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


@pytest.mark.skipif(not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
                    reason="headless Chromium not installed; `make test` installs it (chromium chromium-driver)")
def test_report_from_a_relative_out_shows_every_figure_in_a_browser(killed_then_resumed):
    """The run was given `--out out` from its parent folder, as `make demo` does: every figure of
    report.html must load (a doubled out/.../out/... path once left all trajectories missing)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    page = killed_then_resumed["out"] / "report" / "report.html"
    html = page.read_text()
    assert "image not found" not in html
    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=opts)
    try:
        driver.get(page.as_uri())
        imgs = driver.execute_script(
            "return Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.alt]);")
        missing = driver.execute_script("return document.querySelectorAll('.missing').length;")
    finally:
        driver.quit()
    trajectories = [alt for _done, _w, alt in imgs if alt.startswith("trajectory")]
    assert missing == 0
    assert all(done and width > 0 for done, width, _alt in imgs), imgs
    offline = json.loads((killed_then_resumed["out"] / "offline" / "results.json").read_text())
    ok = [r["name"] for r in offline["variants"] if r["status"] == "ok"]
    assert len(ok) >= 3 and {f"trajectory: {n} on simple (anticlockwise)" for n in ok} <= set(trajectories)
    assert {"latency against driving score", "driving score heatmap"} <= {alt for *_x, alt in imgs}


def test_second_rerun_reuses_everything(killed_then_resumed):
    r = killed_then_resumed
    plots = {p: _stamp(p) for p in (r["out"] / "closed_loop").rglob("*.png")}
    again = _run(r["cfg"], r["out"], "--mlflow")
    assert again.returncode == 0, again.stderr[-3000:]
    log = again.stderr
    assert "(reused)" in log and "drives reused" in log and "already done" in log and "(cached)" in log
    assert "drive [" not in log  # nothing driven again
    assert plots == {p: _stamp(p) for p in (r["out"] / "closed_loop").rglob("*.png")}


def test_mlflow_run_logged(killed_then_resumed):
    """The rerun above passed --mlflow: parameters, metrics and the report are in OUT/mlruns."""
    pytest.importorskip("mlflow", reason="mlflow is not installed (pip install 'pilotopt[mlflow]')")
    from mlflow.tracking import MlflowClient

    store = killed_then_resumed["out"] / "mlruns"
    client = MlflowClient(f"sqlite:///{store / 'mlflow.db'}")
    runs = [run for exp in client.search_experiments() for run in client.search_runs([exp.experiment_id])]
    assert len(runs) == 1
    run = runs[0]
    assert run.data.params["model"] == "pilotnet_student" and run.data.params["profile"] == "quick"
    assert run.data.metrics["torch.mse"] > 0 and run.data.metrics["onnx_fp32.p50_ms"] > 0
    names = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"report.md", "report.html", "results.json"} <= names


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


def test_a_node_lost_before_its_probe_is_not_asked(tmp_path):
    """Right after a node is killed Ray still lists it alive (until its heartbeats time out): its
    probe cannot be scheduled, and the run goes on with the nodes that answer."""
    from pilotopt.pipeline.executors import check_shared_folder

    class TaskUnschedulableError(Exception):  # what ray.exceptions raises for a vanished node
        pass

    class LosingRay:
        @staticmethod
        def nodes():
            return [{"Alive": True, "NodeID": "ab" * 28}, {"Alive": True, "NodeID": "cd" * 28}]

        @staticmethod
        def remote(**_):
            return lambda fn: _Probe()

        @staticmethod
        def get(refs):
            (node,) = refs
            if node == "cd" * 28:
                raise TaskUnschedulableError("The node specified via NodeAffinitySchedulingStrategy doesn't exist")
            return [{"node_id": node, "host": "head", "pid": 1, "sees": True}]

    class _Probe:
        def options(self, scheduling_strategy):
            self.node = scheduling_strategy.node_id
            return self

        def remote(self, path):
            return self.node

    check_shared_folder(LosingRay, tmp_path / "out")  # no error: the live node sees the folder
    assert not list((tmp_path / "out").glob(".pilotopt-shared-*"))

    class Broken(LosingRay):
        @staticmethod
        def get(refs):
            raise RuntimeError("the GCS is gone")

    with pytest.raises(RuntimeError):  # anything else still stops the run
        check_shared_folder(Broken, tmp_path / "out")
