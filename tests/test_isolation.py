"""The one isolated-child runner (pilotopt.isolation) and the one exception-to-one-line function
(pilotopt.errors.one_line): every way a child can die has one wording, and every exception one line."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from pilotopt.errors import BadInputError, RuntimeUnavailable, one_line
from pilotopt.isolation import child_env, run_job, run_python


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:  # a zombie waiting for its reaper is dead too
        return Path(f"/proc/{pid}/status").read_text().split("State:")[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


# -- the runner ------------------------------------------------------------------------------------
def test_a_normal_reply_comes_back(tmp_path):
    code = ("import json, sys; job = json.load(open(sys.argv[1])); "
            "json.dump({'y': job['x'] * 2, 'pid': __import__('os').getpid()}, open(sys.argv[2], 'w'))")
    out = run_job(["-c", code], {"x": 21}, timeout=60)
    assert out.reason is None and out.reply["y"] == 42 and out.returncode == 0 and not out.timed_out
    assert out.reply["pid"] != os.getpid()  # a process of its own


def test_a_segfaulting_child_is_reported_by_signal_name(tmp_path):
    out = run_python(["-c", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"], tmp_path / "reply.json",
                     timeout=60, who="the converter")
    assert out.reply is None and out.returncode == -11
    assert out.reason.startswith("the converter crashed with SIGSEGV") and "\n" not in out.reason


def test_a_hanging_child_times_out_and_its_whole_group_is_killed(tmp_path):
    pid_file = tmp_path / "grandchild.pid"
    code = ("import subprocess, sys, time; "
            "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)']); "
            f"open({str(pid_file)!r}, 'w').write(str(p.pid)); time.sleep(120)")
    t0 = time.monotonic()
    out = run_python(["-c", code], tmp_path / "reply.json", timeout=2, who="the worker")
    assert time.monotonic() - t0 < 30
    assert out.reply is None and out.timed_out
    assert out.reason.startswith("the worker timed out after 2 s")
    grandchild = int(pid_file.read_text())
    deadline = time.monotonic() + 10
    while not _gone(grandchild) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _gone(grandchild), "the child's own children must die with it (SIGKILL to its process group)"


def test_a_nonzero_exit_without_a_reply(tmp_path):
    out = run_python(["-c", "import sys; sys.exit(3)"], tmp_path / "reply.json", timeout=60, hint="see its log")
    assert out.reply is None and out.returncode == 3
    assert out.reason == "the child process exited with code 3 without a result (see its log)"


def test_a_log_gives_the_phase_and_the_last_line(tmp_path):
    log = tmp_path / "child.log"
    code = "print('@@phase load', flush=True); import sys; print('cannot open model.bin', file=sys.stderr); sys.exit(4)"
    out = run_python(["-c", code], tmp_path / "reply.json", timeout=60, log=log, who="the worker",
                     phase_mark="@@phase ")
    assert out.reason == (f"the worker exited with code 4 without a result during 'load': cannot open model.bin "
                          f"(log: {log})")
    assert "cannot open model.bin" in log.read_text()  # stdout and stderr both go to the log


def test_a_reply_that_is_not_json_is_a_failure(tmp_path):
    reply = tmp_path / "reply.json"
    out = run_python(["-c", f"open({str(reply)!r}, 'w').write('{{not json')"], reply, timeout=60)
    assert out.reply is None and "not a JSON object" in out.reason


def test_the_child_environment(tmp_path, monkeypatch):
    plug = tmp_path / "plug"
    plug.mkdir()
    (plug / "pilotopt_isolation_probe.py").write_text("VALUE = 7\n")
    monkeypatch.syspath_prepend(str(plug))  # on sys.path here only, not in PYTHONPATH
    monkeypatch.delenv("TF_USE_LEGACY_KERAS", raising=False)
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "0")  # set by the user: kept
    code = ("import json, os, sys, pilotopt_isolation_probe as m; "
            "json.dump({'v': m.VALUE, 'env': {k: os.environ.get(k) for k in "
            "('TF_USE_LEGACY_KERAS', 'TF_CPP_MIN_LOG_LEVEL', 'OMP_NUM_THREADS', 'PYTHONUNBUFFERED')}}, "
            "open(sys.argv[2], 'w'))")
    out = run_job(["-c", code], {}, timeout=60, threads=3)
    assert out.reason is None, out.reason
    assert out.reply == {"v": 7, "env": {"TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "0",
                                         "OMP_NUM_THREADS": "3", "PYTHONUNBUFFERED": "1"}}
    assert str(plug) in child_env()["PYTHONPATH"].split(os.pathsep)


def test_the_callers_use_the_one_runner_and_wording():
    from pilotopt.evaluate import harness, worker
    from pilotopt.isolation import DIED
    from pilotopt.pipeline import executors

    assert worker.one_line is one_line and executors.one_line is one_line
    assert DIED in executors.WORKER_DIED and "died" in executors.WORKER_DIED
    assert not hasattr(harness, "_kill") and not hasattr(harness, "_log_tail")  # moved to isolation
    assert harness.worker_env(2)["OMP_NUM_THREADS"] == "2"


# -- one line per exception ------------------------------------------------------------------------
def test_own_errors_are_their_message():
    assert one_line(BadInputError("model 'x.pt' is not a file; pass the exported file\nmore")) == \
        "model 'x.pt' is not a file; pass the exported file"
    assert one_line(RuntimeUnavailable("TensorRT needs an NVIDIA GPU; none found")) == \
        "TensorRT needs an NVIDIA GPU; none found"


def test_other_errors_are_type_and_first_line():
    assert one_line(ValueError("job 2 refused\nsecond line")) == "ValueError: job 2 refused"
    assert one_line(KeyboardInterrupt()) == "KeyboardInterrupt"


def test_cxx_messages_skip_source_locations():
    exc = RuntimeError("Exception from src/inference/src/cpp/core.cpp:99:\n"
                       "Check 'false' failed at src/frontends/common/src/frontend.cpp:54:\n"
                       "Unable to read the model: model.xml\n")
    assert one_line(exc) == "RuntimeError: Unable to read the model: model.xml"


def test_a_trailing_named_error_line_wins():
    exc = RuntimeError("The following operation failed in the TorchScript interpreter.\n"
                       "Traceback of TorchScript (most recent call last):\n"
                       "  File \"code/__torch__.py\", line 12, in forward\n"
                       "RuntimeError: shape '[1, 1152]' is invalid for input of size 64")
    assert one_line(exc) == "RuntimeError: shape '[1, 1152]' is invalid for input of size 64"


def test_long_messages_are_cut():
    text = one_line(ValueError("x" * 1000))
    assert len(text) == 300 and text.startswith("ValueError: xxx") and text.endswith("...")
    short = one_line(ValueError("y" * 1000), limit=40)
    assert len(short) == 40 and short.endswith("...")
    assert one_line(ValueError("fits"), limit=40) == "ValueError: fits"


@pytest.mark.parametrize("exc", [OSError(2, "No such file"), TypeError("a\n\nb"), RuntimeError("  \n")])
def test_always_one_line(exc):
    text = one_line(exc)
    assert text and "\n" not in text and text.startswith(type(exc).__name__)
