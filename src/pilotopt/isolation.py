"""Work in an isolated child process: one environment set-up, one way to run a child, one wording
for the ways it can die.

    out = run_job(["-m", "some.module"], {"x": 1}, timeout=60, who="the technique's process")
    out.reply   # the child's reply (a JSON object), or None
    out.reason  # None, or one line: "... crashed with SIGSEGV", "... timed out after 60 s", ...

The child is a fresh interpreter (`sys.executable -c/-m ...`), never a fork: TensorFlow is not
fork-safe, and a fresh process needs no `if __name__ == "__main__"` guard in the caller's script.
It runs in a session of its own, so a timeout kills it and anything it started (SIGKILL to the
process group). The job goes in as a JSON file and the reply comes back as one; a child that dies
without a reply (a converter's SIGSEGV, an abort, os._exit, the OOM killer) costs only itself.

Process pools (pipeline.executors) start their workers themselves; they use `apply_child_env` /
`child_env_vars` and the wording constants here, so every child gets the same environment and
every death is told the same way."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from pilotopt.atomic import write_json
import pilotopt

# defaults a child gets unless the environment already sets them
ENV_DEFAULTS = {"TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
DEBUG_ENV = "PILOTOPT_DEBUG"

# how a child died, in words (a "who" goes in front: "the worker crashed with SIGSEGV")
TIMED_OUT = "timed out after {seconds:g} s"
CRASHED = "crashed with {signal}"
EXITED = "exited with code {code} without a result"
DIED = "died abruptly (a hard crash such as SIGSEGV or abort, or killed for memory)"  # signal unknown


# -- the environment -------------------------------------------------------------------------------
def child_pythonpath(base: Mapping[str, str] | None = None) -> str:
    """PYTHONPATH for a child: this process's pilotopt first (the same code as here), then this
    process's sys.path (so test and plugin modules import there too), then any PYTHONPATH already
    set."""
    base = os.environ if base is None else base
    src = str(Path(pilotopt.__file__).resolve().parents[1])
    entries = [src, *sys.path, *base.get("PYTHONPATH", "").split(os.pathsep)]
    return os.pathsep.join(dict.fromkeys(p for p in entries if p))


def child_env_vars(threads: int | None = None, *, paths: bool = True,
                   base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables a child gets on top of `base` (default os.environ): ENV_DEFAULTS where unset,
    unbuffered output, the BLAS/OpenMP thread variables when `threads` is given, and PYTHONPATH
    (child_pythonpath) unless `paths` is False (a child on another machine)."""
    base = os.environ if base is None else base
    env = {k: base.get(k, v) for k, v in ENV_DEFAULTS.items()}
    env["PYTHONUNBUFFERED"] = "1"
    if threads is not None:
        env.update({var: str(threads) for var in THREAD_VARS})
    if paths:
        env["PYTHONPATH"] = child_pythonpath(base)
    return env


def child_env(threads: int | None = None) -> dict[str, str]:
    """The whole environment of a child process: this one's plus child_env_vars."""
    return {**os.environ, **child_env_vars(threads)}


def apply_child_env(threads: int | None = None) -> None:
    """Make this process's environment a child's (a process-pool worker's initializer)."""
    os.environ.update(child_env_vars(threads))


def set_env_defaults() -> None:
    """ENV_DEFAULTS where unset, in this process (a child's entry point, before TensorFlow)."""
    for key, value in ENV_DEFAULTS.items():
        os.environ.setdefault(key, value)


# -- how it died -----------------------------------------------------------------------------------
def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def death(returncode: int | None, timed_out: bool = False, timeout: float | None = None) -> str:
    """How a child with no result ended, without who or where: "timed out after 3 s",
    "crashed with SIGSEGV", "exited with code 3 without a result"."""
    if timed_out:
        return TIMED_OUT.format(seconds=timeout) if timeout is not None else "timed out"
    if returncode is None:
        return DIED
    if returncode < 0:
        return CRASHED.format(signal=signal_name(-returncode))
    return EXITED.format(code=returncode)


def log_tail(log: Path | str | None, phase_mark: str | None = None) -> tuple[str | None, str | None]:
    """(last phase, last other line) of a child's log: lines starting with `phase_mark` (e.g. the
    evaluation worker's "@@phase ") name the phase it was in; the last other line is often the
    error it printed."""
    if log is None:
        return None, None
    try:
        lines = Path(log).read_text(errors="replace").splitlines()
    except OSError:
        return None, None
    phases = [ln[len(phase_mark):].strip() for ln in lines if phase_mark and ln.startswith(phase_mark)]
    other = [ln.strip() for ln in lines if ln.strip() and not (phase_mark and ln.startswith(phase_mark))]
    return (phases[-1] if phases else None), (other[-1][:200] if other else None)


def failure_reason(who: str, returncode: int | None, *, timed_out: bool = False, timeout: float | None = None,
                   log: Path | str | None = None, phase_mark: str | None = None, hint: str | None = None) -> str:
    """One line for a child that gave no result: who, how it died, in which phase and with which
    last line of its log (when there is one), and where to look.

        the worker crashed with SIGSEGV during 'load' (log: out/logs/x.log)"""
    phase, last = log_tail(log, phase_mark)
    where = f" during '{phase}'" if phase else ""
    exited = not timed_out and returncode is not None and returncode >= 0
    detail = f": {last}" if exited and last else ""
    notes = "; ".join(n for n in (f"log: {log}" if log is not None else None, hint) if n)
    return f"{who} {death(returncode, timed_out, timeout)}{where}{detail}" + (f" ({notes})" if notes else "")


# -- running one child -----------------------------------------------------------------------------
@dataclass
class Outcome:
    """How a child ended: its reply, or the one-line reason there is none."""

    reply: dict | None
    reason: str | None
    returncode: int | None
    timed_out: bool
    seconds: float

    @property
    def ok(self) -> bool:
        return self.reply is not None


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the child's session (it and anything it started), then reap it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
    proc.wait()


def run_python(args: Sequence[str], reply_file: Path | str, *, timeout: float | None = None,
               threads: int | None = None, log: Path | str | None = None, who: str = "the child process",
               phase_mark: str | None = None, hint: str | None = None) -> Outcome:
    """Run `python ARGS` (this interpreter, child_env(threads)) in a session of its own, wait for it
    (SIGKILL to its process group after `timeout` seconds, or if this process is interrupted), and
    read its reply from `reply_file` (a JSON object; a stale one must be removed by the caller).

    Output: to `log` (stdout and stderr together) when given, else discarded unless PILOTOPT_DEBUG
    is set (then it goes to this process's stdout/stderr). A child that was not killed and left a
    readable reply has that reply, whatever its exit code (a crash while the interpreter shuts down
    loses nothing); otherwise `reason` says how it died (failure_reason)."""
    reply_file = Path(reply_file)
    cmd = [sys.executable, *map(str, args)]
    timed_out = False
    t0 = time.monotonic()
    if log is not None:
        out = open(log, "wb")
        stdout, stderr = out, subprocess.STDOUT
    else:
        out = None
        stdout = stderr = None if os.environ.get(DEBUG_ENV) else subprocess.DEVNULL
    try:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
                                env=child_env(threads), start_new_session=True)
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_group(proc)
            rc, timed_out = proc.returncode, True
        except BaseException:
            kill_group(proc)
            raise
    finally:
        if out is not None:
            out.close()
    seconds = time.monotonic() - t0
    reply = reason = None
    if not timed_out and reply_file.is_file():
        try:
            reply = json.loads(reply_file.read_text())
        except (OSError, ValueError):
            reply = None
        if not isinstance(reply, dict):
            reply = None
            reason = f"{who} left a reply that is not a JSON object ('{reply_file}')"
    if reply is None and reason is None:
        reason = failure_reason(who, rc, timed_out=timed_out, timeout=timeout, log=log, phase_mark=phase_mark,
                                hint=hint)
    return Outcome(reply, reason, rc, timed_out, seconds)


def run_job(args: Sequence[str], job: dict, *, scratch_prefix: str = "pilotopt-child-", **kw) -> Outcome:
    """Write `job` to a scratch JOB.json and run `python ARGS JOB.json REPLY.json` (run_python's
    keywords); the child writes its reply to REPLY.json. The scratch folder is removed after."""
    with tempfile.TemporaryDirectory(prefix=scratch_prefix) as scratch:
        job_file, reply_file = Path(scratch) / "job.json", Path(scratch) / "reply.json"
        write_json(job_file, job)
        return run_python([*args, job_file, reply_file], reply_file, **kw)
