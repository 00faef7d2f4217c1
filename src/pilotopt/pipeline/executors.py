"""Executors for a matrix of independent jobs (one closed-loop drive of one variant on one circuit).

Every executor has the same contract, so the pipeline does not care where jobs run:
`map(fn, jobs, on_done)` calls the top-level function `fn(job)` for each JSON-like job dict in a
worker process and returns the results in job order. A job that raises, or whose worker process
dies (a converter or runtime that segfaults, the OOM killer), gives
`{"status": "failed", "reason": "<one line>"}` for that job only; the others go on.

Executors are registered by name: adding one is writing a class with `@register_executor("name")`.
"""

from __future__ import annotations

import faulthandler
import multiprocessing
import os
import re
import socket
import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, ClassVar

from pilotopt.errors import BadInputError, one_line
from pilotopt.isolation import DIED, apply_child_env, child_env_vars

Job = dict
JobFn = Callable[[dict], dict]
OnDone = Callable[[int, dict, dict], None]

WORKER_DIED = f"the worker process {DIED}; its Python stack, if any, is on stderr"

_EXECUTORS: dict[str, type[Executor]] = {}


def register_executor(name: str) -> Callable[[type[Executor]], type[Executor]]:
    """Class decorator: make the executor available to `get_executor(name)`."""

    def add(cls: type[Executor]) -> type[Executor]:
        cls.name = name
        _EXECUTORS[name] = cls
        return cls

    return add


def executor_names() -> list[str]:
    return sorted(_EXECUTORS)


def get_executor(name: str, workers: int | None = None, address: str | None = None, **settings: Any) -> Executor:
    """The executor called `name`. Building it checks what can be checked cheaply (the optional
    package is installed, the cluster address answers) so a run fails before any work, in one line;
    nothing is started until `map`. `settings` are the executor's own keyword options."""
    cls = _EXECUTORS.get(name)
    if cls is None:
        raise BadInputError(f"unknown executor {name!r}: choose one of {', '.join(executor_names())}")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise BadInputError(f"executor workers must be a whole number >= 1, got {workers!r}")
    return cls(workers=workers, address=address, **settings)


def failed(reason: str) -> dict:
    return {"status": "failed", "reason": reason}


def _run_job(fn: JobFn, job: dict) -> dict:
    """Runs in the worker. A Python error becomes the job's failed result here, where the exception
    is still whole (it might not pickle back); faulthandler leaves the Python stack of a hard crash
    on stderr, since the parent only learns that the process died."""
    faulthandler.enable()
    try:
        return fn(job)
    except (Exception, SystemExit) as exc:
        return failed(one_line(exc))


class Executor:
    """Runs `fn(job)` for every job; see the module docstring for the contract."""

    name: ClassVar[str] = ""

    def __init__(self, workers: int | None = None, address: str | None = None) -> None:
        self.workers = workers
        self.address = address

    placements: list[dict | None]  # after `map`: where each job ran ({node_id, host, attempts, node_losses})

    def map(self, fn: JobFn, jobs: list[dict], on_done: OnDone | None = None) -> list[dict]:
        """Results of `fn(job)` in job order; `on_done(index, job, result)` is called once per job as
        it finishes (in finishing order), e.g. to advance a progress bar."""
        raise NotImplementedError

    @contextmanager
    def session(self, shared: Path | None = None):
        """Keep what `map` needs open across several calls (nothing, for a process pool)."""
        yield self


# width -> (this process's environment when started, a pool whose workers run job after job)
_WARM: dict[int, tuple[int, ProcessPoolExecutor]] = {}


def _warm_pool(width: int) -> ProcessPoolExecutor:
    """The process's pool of `width` reusable workers (fresh=False), started once: the closed
    loop's phases (the screen, the shortlist's rounds, the breaking points) and a search's trials
    map their drives onto the same workers instead of spawning them and importing the frameworks
    again (3-4 s a pool). A pool is replaced when it broke or when this process's environment
    changed since it started (workers take the environment at start); its workers end with this
    process."""
    env = hash(frozenset(os.environ.items()))
    known = _WARM.get(width)
    if known is not None:
        started, pool = known
        if started == env and not getattr(pool, "_broken", False):
            return pool
        pool.shutdown(wait=True, cancel_futures=True)
    pool = ProcessPoolExecutor(max_workers=width, mp_context=multiprocessing.get_context("spawn"),
                               max_tasks_per_child=None, initializer=apply_child_env)
    _WARM[width] = (env, pool)
    return pool


def _retire(width: int, pool: ProcessPoolExecutor) -> None:
    """Shut `pool` down, and forget it if it was the warm one."""
    if width in _WARM and _WARM[width][1] is pool:
        del _WARM[width]
    pool.shutdown(wait=True, cancel_futures=True)


@register_executor("local")
class LocalExecutor(Executor):
    """A process pool on this machine: "spawn" processes (TensorFlow is not fork-safe) and a fresh
    interpreter for every job (max_tasks_per_child=1), so each runtime is timed in a clean process
    and a crashing converter takes only its own job down. With `fresh=False` a worker runs job
    after job, across `map` calls too (frameworks imported once per worker, not once per job or
    per call: for jobs whose timing does not matter, such as drives with emulated latency); a worker that dies still fails only its own
    job, since the jobs in flight with it are run again alone. One worker by default, because
    closed-loop timings compete for the cores; more is the user's call."""

    def __init__(self, workers: int | None = None, address: str | None = None, fresh: bool = True) -> None:
        if address is not None:
            raise BadInputError(f"the local executor takes no address (got {address!r}); "
                                "an address is for the ray executor")
        super().__init__(workers or 1, None)
        self.fresh = fresh

    def map(self, fn: JobFn, jobs: list[dict], on_done: OnDone | None = None) -> list[dict]:
        here = {"node_id": "local", "host": socket.gethostname(), "attempts": 1, "node_losses": []}
        self.placements = [dict(here) for _ in jobs]
        results: list[dict | None] = [None] * len(jobs)

        def finish(i: int, result: dict) -> None:
            results[i] = result
            if on_done is not None:
                on_done(i, jobs[i], result)

        queue = deque(range(len(jobs)))
        while queue:
            # A dead worker breaks the whole pool and fails every job in flight; when that was
            # more than one, each is run again alone so the crash lands on the job that caused it.
            for i in self._drain(fn, jobs, queue, self.workers, finish, self.fresh):
                self._drain(fn, jobs, deque([i]), 1, finish, self.fresh)
        return results  # type: ignore[return-value]

    @staticmethod
    def _drain(fn: JobFn, jobs: list[dict], queue: deque, width: int, finish: Callable[[int, dict], None],
               fresh: bool = True) -> list[int]:
        """Runs jobs from `queue` in one pool, at most `width` at once (never queued inside the
        pool, so a broken pool names only jobs that were really running), until the queue is empty
        or a worker dies. Returns the jobs lost to a dead worker when it is unknown which of them
        died; a lone lost job is failed here."""
        pool = _warm_pool(width) if not fresh else ProcessPoolExecutor(
            max_workers=width, mp_context=multiprocessing.get_context("spawn"), max_tasks_per_child=1,
            initializer=apply_child_env)
        running: dict[Future, int] = {}
        lost: list[int] = []

        def settle(fut: Future, i: int) -> None:
            exc = fut.exception()
            if isinstance(exc, BrokenProcessPool):
                lost.append(i)
            elif exc is not None:  # the call itself could not be made (e.g. the job does not pickle)
                finish(i, failed(one_line(exc)))
            else:
                finish(i, fut.result())

        try:
            while (queue or running) and not lost:
                while queue and len(running) < width:
                    i = queue.popleft()
                    running[pool.submit(_run_job, fn, jobs[i])] = i
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in done:
                    settle(fut, running.pop(fut))
            if lost:  # the broken pool fails all the others at once; some may have finished first
                wait(running)
                for fut, i in running.items():
                    settle(fut, i)
        except BaseException:  # interrupted: this pool is never reused
            _retire(width, pool)
            raise
        if fresh or lost:  # a pool a dead worker broke is not reused either
            _retire(width, pool)
        if len(lost) == 1:
            finish(lost[0], failed(WORKER_DIED))
            return []
        return lost


@register_executor("ray")
class RayExecutor(Executor):
    """Ray tasks, on a local instance or a cluster. `address` None (or "local") starts a local Ray
    instance for the duration of `map` and shuts it down after; "auto" or "host:port" (or
    "ray://host:port") joins an existing cluster, which is left running. If this process is already
    connected to Ray (`session`), that connection is used and left open. Each job is one task with
    `num_cpus` CPUs, spread over the nodes (Ray's SPREAD strategy: long CPU-bound jobs, not many
    small ones), in a worker process of its own (`fresh=False`: Ray's workers run job after job).
    A job whose code crashes is a result, never retried; a job whose NODE died (preempted, its
    raylet killed) is submitted again, up to `node_retries` times, since every job here is
    deterministic and writes atomically. `workers` caps how many are submitted at once (None: as
    many as the cluster schedules). `runtime_env` goes to ray.init when this executor connects.
    After `map`, `placements[i]` says where job i ran (node id, host, attempts, the node losses)."""

    def __init__(self, workers: int | None = None, address: str | None = None, num_cpus: float = 1.0,
                 runtime_env: dict | None = None, fresh: bool = True, node_retries: int = 1,
                 label: str | None = None) -> None:
        try:
            import ray  # noqa: F401
        except ImportError:
            raise BadInputError("the ray executor needs ray: pip install 'pilotopt[ray]'") from None
        super().__init__(workers, address)
        self.num_cpus = num_cpus
        self.runtime_env = runtime_env
        self.fresh = fresh
        self.node_retries = node_retries
        self.label = label  # the tasks' name in Ray's dashboard and logs (default: the job function's)
        if address not in (None, "local", "auto"):
            _check_reachable(address)

    def map(self, fn: JobFn, jobs: list[dict], on_done: OnDone | None = None) -> list[dict]:
        import ray
        from ray.exceptions import NodeDiedError, RayError, RayTaskError, WorkerCrashedError

        self.placements = [None] * len(jobs)
        if not jobs:  # nothing to run: do not start Ray for it
            return []
        started = False
        if not ray.is_initialized():
            self._connect(ray)
            started = True
        try:
            # max_calls=1: a fresh worker process per job, as with the local executor (0: no limit).
            task = ray.remote(num_cpus=self.num_cpus, max_retries=0, retry_exceptions=False,
                              max_calls=1 if self.fresh else 0, scheduling_strategy="SPREAD")(_run_job_on_node)
            task = task.options(name=self.label or getattr(fn, "__name__", "job"))
            results: list[dict | None] = [None] * len(jobs)
            lost: dict[int, list[str]] = {}  # job -> the reasons of its node losses
            queue = deque(range(len(jobs)))
            running: dict[Any, int] = {}
            limit = self.workers or max(len(jobs), 1)
            while queue or running:
                while queue and len(running) < limit:
                    i = queue.popleft()
                    running[task.remote(fn, jobs[i])] = i
                done, _ = ray.wait(list(running), num_returns=1)
                for ref in done:
                    i = running.pop(ref)
                    where = None
                    try:
                        result, where = ray.get(ref)
                    except NodeDiedError as exc:
                        lost.setdefault(i, []).append(_node_loss(exc))
                        if len(lost[i]) <= self.node_retries:
                            queue.appendleft(i)  # again, on a node that is still there
                            continue
                        result = failed(f"{lost[i][-1]}; given up after {len(lost[i])} node losses")
                    except WorkerCrashedError:
                        result = failed(WORKER_DIED)
                    except RayTaskError as exc:  # raised outside fn, e.g. fn's module not importable there
                        result = failed(one_line(exc.cause if isinstance(exc.cause, BaseException) else exc))
                    except RayError as exc:
                        result = failed(one_line(exc))
                    results[i] = result
                    self.placements[i] = {**(where or {}), "attempts": len(lost.get(i, [])) + 1,
                                          "node_losses": lost.get(i, [])}
                    if on_done is not None:
                        on_done(i, jobs[i], result)
            return results  # type: ignore[return-value]
        finally:
            if started:
                ray.shutdown()

    @contextmanager
    def session(self, shared: Path | None = None):
        """One connection for several `map` calls (and threads making them), closed at the end if
        this opened it. `shared`: a folder every node must see at the same path (the run folder,
        through which the jobs pass their artifacts); a node that cannot is a one-line error now,
        before any work."""
        import ray

        started = not ray.is_initialized()
        if started:
            self._connect(ray)
        try:
            if shared is not None:
                check_shared_folder(ray, Path(shared))
            yield self
        finally:
            if started:
                ray.shutdown()

    def _connect(self, ray: Any) -> None:
        if self.address in (None, "local"):
            # "local", not None: None would silently join any cluster found on this machine.
            kwargs: dict[str, Any] = {"address": "local", "include_dashboard": False}
        else:
            kwargs = {"address": self.address}
        # the same environment as every other child (isolation.child_env_vars); this machine's
        # paths only for a local instance, whose workers run here. The user's runtime_env wins.
        runtime_env = dict(self.runtime_env or {})
        runtime_env["env_vars"] = {**child_env_vars(paths=self.address in (None, "local")),
                                   **(runtime_env.get("env_vars") or {})}
        kwargs["runtime_env"] = runtime_env
        try:
            ray.init(**kwargs)
        except ConnectionError as exc:
            where = "a running Ray cluster (address 'auto')" if self.address == "auto" else f"Ray at {self.address}"
            raise BadInputError(f"cannot connect to {where}: {one_line(exc)}; "
                                "start one with `ray start --head` or leave the address out") from None


def where_here() -> dict:
    """This process's node: the Ray node id inside a Ray worker ("local" elsewhere), host and pid."""
    node = "local"
    try:
        import ray

        if ray.is_initialized():
            node = ray.get_runtime_context().get_node_id()
    except ImportError:
        pass
    return {"node_id": node, "host": socket.gethostname(), "pid": os.getpid()}


def _run_job_on_node(fn: JobFn, job: dict) -> tuple[dict, dict]:
    return _run_job(fn, job), where_here()


def _node_loss(exc: BaseException) -> str:
    """"its node <id> died while running it", the id read from Ray's message (it has no field)."""
    found = re.search(r"node ID: ([0-9a-f]+)", str(exc))
    return f"its node {found.group(1)[:12]} died while running it" if found else "its node died while running it"


def _sees(path: str) -> dict:
    return {**where_here(), "sees": os.path.exists(path)}


# a node listed alive that died before its probe ran (Ray marks a lost node dead only after its
# heartbeats time out): it can run no job of this run either, so it is not asked
_NODE_GONE = ("TaskUnschedulableError", "NodeDiedError", "WorkerCrashedError")


def _probe_reply(ray: Any, ref) -> dict | None:
    try:
        (reply,) = ray.get([ref])
    except Exception as exc:  # noqa: BLE001 - only a vanished node is forgiven
        if type(exc).__name__ in _NODE_GONE:
            return None
        raise
    return reply


def check_shared_folder(ray: Any, folder: Path) -> None:
    """Every alive node reads a token written into `folder` here, or the run stops in one line:
    the jobs of a Ray run pass their artifacts (data, baselines, variants, drive records) through
    the run folder, so a cluster needs it on a filesystem all nodes mount at the same path."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    folder.mkdir(parents=True, exist_ok=True)
    token = folder / f".pilotopt-shared-{os.getpid()}-{time.time_ns()}"
    token.write_text("")
    try:
        probe = ray.remote(num_cpus=0)(_sees)
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        refs = [probe.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False))
                .remote(str(token)) for n in nodes]
        seen = [s for s in map(lambda ref: _probe_reply(ray, ref), refs) if s is not None]
    finally:
        token.unlink(missing_ok=True)
    blind = [f"{s['host']} (node {s['node_id'][:12]})" for s in seen if not s["sees"]]
    if blind:
        raise BadInputError(f"{', '.join(blind)} cannot see the run folder {folder}: a Ray run passes its artifacts "
                            "through it, so put --out on a filesystem every node mounts at the same path (NFS, a "
                            "cluster file system), or run on one machine")


def _check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Fail fast, in one line, on an address nothing listens on: ray.init itself retries for
    minutes before giving up on an unreachable cluster."""
    hostport = address.split("://", 1)[1] if "://" in address else address
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise BadInputError(f"ray address {address!r}: expected host:port, ray://host:port or 'auto'")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
            pass
    except OSError as exc:
        raise BadInputError(f"cannot reach the Ray cluster at {address}: {exc.strerror or exc}; "
                            "check the address or start one with `ray start --head`") from None
