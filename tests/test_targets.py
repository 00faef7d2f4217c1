"""Latency measured on a target device: a real OpenSSH server on loopback in front of a venv with
only the edge package and two runtimes (no torch, no TensorFlow), and a second local Ray node
holding a custom resource. The bench runs there, its outputs equal this machine's, a runtime the
device lacks is "not runnable", a rerun sends nothing again, and a broken device is one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from _edge import build_edge_venv, in_venv
from _fixtures import torch_checkpoint
from _sshd import sshd, sshd_processes

pytestmark = pytest.mark.slow

EVAL = ["--test-circuits", "simple", "--threads", "1", "--min-calls", "5", "--min-seconds", "0.01",
        "--target-iterations", "10"]


def cli(*args, timeout=600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pilotopt", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def device(tmp_path_factory):
    """The car: a venv with pilotopt-edge[onnxruntime,litert] only, behind sshd on a loopback port."""
    root = tmp_path_factory.mktemp("device")
    venv = build_edge_venv(root / "edge", ("onnxruntime", "litert"))
    with sshd(root / "sshd") as server:
        spec = f"{server['spec']}&python={venv['python']}&cache={root / 'cache'}"
        yield {**server, "venv": venv, "spec": spec, "cache": root / "cache"}
    assert sshd_processes(server["config"]) == []  # no sshd (or session) outlives the test


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    from pilotopt.techniques import optimize

    root = tmp_path_factory.mktemp("target_art")
    vs = optimize(torch_checkpoint(root / "model.pt"), "torch,onnx_fp32,onnx_int8_dynamic,openvino_fp32", None,
                  root / "variants", threads=1)
    assert all(v.status == "ok" for v in vs), {v.name: v.reason for v in vs}
    return root / "variants"


def test_the_device_has_only_the_edge_package_and_two_runtimes(device):
    r = in_venv(device["venv"]["python"], "-m", "pip", "list", "--format=json")
    names = {p["name"].lower() for p in json.loads(r.stdout)}
    assert {"pilotopt-edge", "onnxruntime", "ai-edge-litert", "numpy"} <= names
    assert not names & {"torch", "tensorflow", "tf-keras", "openvino", "pilotopt"}


def test_target_check_names_the_device_and_what_is_missing(device):
    r = cli("target", "check", device["spec"])
    assert r.returncode == 0, r.stderr
    assert "onnxruntime: 1." in r.stdout and "litert: " in r.stdout and "openvino: not installed" in r.stdout
    assert "missing: openvino" in r.stdout and "pip install 'pilotopt-edge[openvino]'" in r.stdout
    assert os.uname().machine in r.stdout and "Python 3." in r.stdout


def test_evaluate_on_an_ssh_target(device, artifacts, tiny_data, tmp_path):
    out = tmp_path / "eval"
    sessions_before = device["log"].read_text().count("Accepted publickey")
    r = cli("evaluate", "--artifacts", artifacts, "--data", tiny_data, "--out", out, "--target", device["spec"], *EVAL)
    assert r.returncode == 0, r.stderr[-2000:]
    doc = json.loads((out / "results.json").read_text())
    rows = {row["name"]: row for row in doc["variants"]}
    where = device["spec"].split("?")[0]
    assert doc["target"]["spec"] == where and doc["target"]["runtimes"]["openvino"] is None
    for name in ("onnx_fp32", "onnx_int8_dynamic"):
        t = rows[name]["on_target"]
        assert t["status"] == "ok" and t["sent"] is True, t
        # measured by the device's own Python (the edge venv, reached over ssh), in a process of its own
        assert t["device"]["executable"] == str(device["venv"]["python"]) and t["device"]["pid"] != os.getpid()
        assert t["brain_step"]["n"] == 10 and len(t["brain_step_samples_ms"]) == 10
        # the device computes this machine's commands on the reference frames
        assert t["check"]["ok"] and max(t["check"]["max_abs_dv"], t["check"]["max_abs_dw"]) <= 1e-5, t["check"]
    assert device["log"].read_text().count("Accepted publickey") > sessions_before
    for name, why in (("openvino_fp32", "pip install 'pilotopt-edge[openvino]'"), ("torch", "runs on torch")):
        t = rows[name]["on_target"]
        assert t["status"] == "not runnable" and why in t["reason"] and where in t["reason"], t
    assert "openvino_fp32: not runnable on" in r.stdout, r.stdout
    csv = (out / "results.csv").read_text().splitlines()
    assert "target_brain_step_p50_ms" in csv[0]

    # a second run, its kept results removed, times every variant there again but sends no folder again
    kept = list((out / "target").glob("*/*.json"))
    assert {p.stem for p in kept} == {"onnx_fp32", "onnx_int8_dynamic"}
    for p in kept:
        p.unlink()
    r = cli("evaluate", "--artifacts", artifacts, "--data", tiny_data, "--out", out, "--target", device["spec"], *EVAL)
    assert r.returncode == 0, r.stderr[-2000:]
    again = {row["name"]: row for row in json.loads((out / "results.json").read_text())["variants"]}
    for name in ("onnx_fp32", "onnx_int8_dynamic"):
        assert again[name]["on_target"]["sent"] is False
        assert again[name]["on_target"]["device"]["pid"] != rows[name]["on_target"]["device"]["pid"]


def _fails(spec: str, match: str):
    from pilotopt.targets import TargetError, parse_target

    with pytest.raises(TargetError, match=match) as err:
        parse_target(spec).describe()
    assert "\n" not in str(err.value)


def test_a_broken_device_is_one_line_naming_the_fix(device, tmp_path):
    from _sshd import keygen

    base = device["spec"].split("?")[0]
    query = f"known_hosts={device['known_hosts']}&identity={device['identity']}"
    _fails(f"ssh://{device['user']}@127.0.0.1:1?{query}", "cannot reach .*check the host and port")
    stranger = keygen(tmp_path / "stranger")
    _fails(f"{base}?known_hosts={device['known_hosts']}&identity={stranger}", "refused the login.*authorized_keys")
    _fails(f"{base}?{query}&python=/nowhere/bin/python", "no Python at '/nowhere/bin/python'.*python=")
    _fails(f"{base}?{query}&python={sys.base_prefix}/bin/python3",  # a Python without the edge package
           "edge package is not installed .*pip install")
    from pilotopt.errors import BadInputError
    from pilotopt.targets import parse_target

    with pytest.raises(BadInputError, match="unknown setting.*pyhton.*python"):
        parse_target(f"{base}?pyhton=/x")
    with pytest.raises(BadInputError, match="unknown target 'sftp://x'.*ssh://"):
        parse_target("sftp://x")


def test_a_device_that_dies_mid_bench_keeps_nothing_and_a_rerun_resumes(device, artifacts, tiny_data, tmp_path):
    """The device's Python is killed during the bench: one line, exit 2, no half result kept; the
    rerun with a healthy device measures it."""
    dying = tmp_path / "dying-python"
    dying.write_text(f"#!/bin/sh\ncase \"$*\" in *bench*) kill -9 $$;; esac\nexec {device['venv']['python']} \"$@\"\n")
    dying.chmod(0o755)
    spec = device["spec"].replace(f"python={device['venv']['python']}", f"python={dying}")
    out = tmp_path / "eval"
    one = artifacts / "onnx_fp32"  # a variant folder: that variant alone
    r = cli("evaluate", "--artifacts", one, "--data", tiny_data, "--out", out, "--target", spec, *EVAL)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-2000:]
    last = r.stderr.strip().splitlines()[-1]
    assert "during the bench" in last and "rerun" in last, last
    assert not (out / "results.json").exists()
    assert not list((out / "target").glob("*/*.json"))  # nothing measured is kept
    r = cli("evaluate", "--artifacts", one, "--data", tiny_data, "--out", out, "--target", device["spec"], *EVAL)
    assert r.returncode == 0, r.stderr[-2000:]
    rows = {row["name"]: row for row in json.loads((out / "results.json").read_text())["variants"]}
    assert rows["onnx_fp32"]["cached"] is True and rows["onnx_fp32"]["on_target"]["status"] == "ok"


def test_a_ray_target_runs_the_bench_on_the_node_holding_the_resource(artifacts, tmp_path):
    ray = pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    from pilotopt.targets import parse_target
    from pilotopt.targets.measure import measure_on_target
    from pilotopt.variants import read_variant

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    try:
        node = cluster.add_node(num_cpus=1, resources={"edge_device": 1})
        ray.init(address=cluster.address, log_to_driver=False)
        head = ray.get_runtime_context().get_node_id()
        target = parse_target("ray:edge_device")
        assert "onnxruntime" in target.describe().runtimes
        folder = artifacts / "onnx_fp32"
        tl = measure_on_target(target, folder, read_variant(folder), tmp_path / "store", iterations=10, warmup=1)
        assert tl.ok and tl.sent and tl.check.ok, tl
        assert tl.device.node_id == node.node_id != head
        again = measure_on_target(target, folder, read_variant(folder), tmp_path / "store", iterations=10,
                                  warmup=1, force=True)
        assert again.ok and again.sent is False and again.device.node_id == node.node_id
    finally:
        ray.shutdown()
        cluster.shutdown()
