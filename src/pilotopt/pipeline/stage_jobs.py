"""The train and optimize stages' jobs (one framework's baseline; one group of technique chains)
and where they run. With the local executor they run in this process's build threads, as they
always did (optimize isolates every chain in a child process itself); with `executor.name: ray`
each is a Ray task spread over the cluster (`train_job`, `optimize_job`: JSON in, JSON out).

Either way every artifact goes to the run folder, the one place a later stage or a rerun looks:
nothing travels through Ray's object store but the jobs' small JSON replies, so a cluster needs
the run folder on a filesystem all nodes mount at the same path (checked when the run connects,
executors.check_shared_folder). A job whose node dies is submitted again (the executor's
node_retries); one that still fails stops the training (a baseline is needed) or fails only its own
variants (a technique group), and a rerun resumes: finished baselines and variants are cached.

`JobLedger` keeps OUT/jobs.json: every job the run executed, its stage, node and host, attempts
and node losses, so a user sees where each baseline, variant and drive group was built."""

from __future__ import annotations

import re
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from pilotopt.atomic import write_json
from pilotopt.errors import PilotoptError
from pilotopt.pipeline.config import PipelineConfig, referenced_techniques, technique_overrides
from pilotopt.pipeline.executors import Executor, get_executor, where_here
from pilotopt.techniques import optimize
from pilotopt.train import TrainConfig, train
from pilotopt.variants import VARIANT_SCHEMA, Variant

Say = Callable[[str], None]
LEDGER_SCHEMA = "pilotopt.jobs/1"
RUNNING = "running"  # OUT/running/: one file per job running now


class StageJobFailed(PilotoptError):
    """A stage job that the run cannot go on without (a baseline) failed where it ran."""


# -- the jobs themselves ---------------------------------------------------------------------------
def train_baseline(cfg: PipelineConfig, out: Path, data_roots: list[Path], fw: str, threads: int, say: Say) -> Path:
    """One framework's baseline; returns its model file."""
    tc = TrainConfig(framework=fw, model=cfg.train.model, data=list(data_roots), out=out / "train" / fw,
                     epochs=cfg.train.epochs, batch_size=cfg.train.batch_size,
                     learning_rate=cfg.train.learning_rate, patience=cfg.train.patience, seed=cfg.seed,
                     threads=threads, test_circuits=tuple(cfg.data.test_circuits),
                     oversample=cfg.train.oversample, cache_dir=out / "cache")
    last = [0.0]

    def progress(phase, done, total, info):
        if phase == "epoch" or time.perf_counter() - last[0] > 15:
            last[0] = time.perf_counter()
            extra = f" val_loss {info['val_loss']:.4f}" if isinstance(info.get("val_loss"), float) else ""
            say(f"train {fw}: {phase} {done}/{total}{extra}")

    metrics = train(tc, progress=progress)
    note = "reused" if metrics.get("cached") else f"{metrics['seconds']['train']:.0f} s"
    say(f"train {fw}: {cfg.train.model} test MSE {metrics['mse']['test']['mean']:.5f} ({note})")
    return out / "train" / fw / metrics["artifacts"][0]


def optimize_group(cfg: PipelineConfig, out: Path, data_roots, baseline: Path, job, threads: int, tagged: bool,
                   say: Say, given: dict | None = None) -> list[Variant]:
    """One prefix group of technique chains (pipeline.run.prefix_groups) applied to `baseline`."""
    fw, items, variants = job
    used = referenced_techniques(cfg, items, variants)
    progress = (lambda line: say(f"{fw}: {line}")) if tagged else say
    return optimize(baseline, items, data_roots, out / "variants", variants=variants,
                    settings=technique_overrides(cfg, used), seed=cfg.seed, threads=threads,
                    cache_dir=out / "cache", progress=progress, test_circuits=tuple(cfg.data.test_circuits),
                    timeout=cfg.technique_timeout_s, max_mse_ratio=cfg.max_mse_ratio, **(given or {}))


def _worker_say(line: str) -> None:
    print(line, flush=True)  # a Ray worker's stdout reaches the driver's console, prefixed with the task


@contextmanager
def running(out: Path, stage: str, name: str) -> Iterator[None]:
    """OUT/running/<stage>-<job>.json while the job runs, saying on which node and host: what a
    user (or a test) reads to see where the work is now. A job killed with its node leaves its
    file until its retry ends or the next run starts (`clear_running`)."""
    path = out / RUNNING / f"{stage}-{_slug(name)}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, {"stage": stage, "job": name, **where_here(), "started": time.time()})
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


def clear_running(out: Path) -> None:
    for path in (out / RUNNING).glob("*.json"):
        path.unlink(missing_ok=True)


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", name)[:120]


def train_job(job: dict) -> dict:
    """`train_baseline` from a JSON job (a Ray task)."""
    cfg = PipelineConfig.model_validate(job["config"])
    out = Path(job["out"])
    with running(out, "train", job["framework"]):
        model = train_baseline(cfg, out, [Path(p) for p in job["data"]], job["framework"], job["threads"], _worker_say)
    return {"status": "ok", "model": str(model)}


def optimize_job(job: dict) -> dict:
    """`optimize_group` from a JSON job (a Ray task); the variants come back as their JSON records."""
    cfg = PipelineConfig.model_validate(job["config"])
    out = Path(job["out"])
    group = (job["framework"], job["items"], job["variants"])
    with running(out, "optimize", job["name"]):
        made = optimize_group(cfg, out, [Path(p) for p in job["data"]], Path(job["baseline"]), group,
                              job["threads"], job["tagged"], _worker_say, job.get("given"))
    return {"status": "ok", "variants": [v.to_json() for v in made]}


def variant_from_json(doc: dict) -> Variant:
    if doc.get("schema") != VARIANT_SCHEMA:
        raise ValueError(f"not a variant record: {doc.get('schema')!r}")
    return Variant(**{k: v for k, v in doc.items() if k != "schema"})


# -- where they run --------------------------------------------------------------------------------
class JobLedger:
    """OUT/jobs.json: where each job of this run ran. Threads add to it as their jobs end; the file
    is rewritten atomically each time, so a killed run leaves the jobs it finished."""

    def __init__(self, path: Path, executor: str, address: str | None):
        self.path = path
        self._lock = threading.Lock()
        self.doc = {"schema": LEDGER_SCHEMA, "executor": executor, "address": address,
                    "artifacts": "the run folder (a Ray cluster needs it on a filesystem every node shares)",
                    "latency_measured_on": {"host": socket.gethostname(),
                                            "what": "the offline stage's latency and brain-step samples, "
                                                    "on the machine running `pilotopt run`"},
                    "jobs": []}
        write_json(self.path, self.doc)  # a previous run's entries never stand for this one's

    def add(self, stage: str, job: str, placement: dict | None, status: str, reason: str | None = None,
            seconds: float | None = None) -> None:
        entry = {"stage": stage, "job": job, **(placement or {"node_id": None, "host": None}), "status": status,
                 "reason": reason, "seconds": None if seconds is None else round(seconds, 2)}
        with self._lock:
            self.doc["jobs"].append(entry)
            write_json(self.path, self.doc)

    def add_map(self, stage: str, names: list[str], ex: Executor, results: list) -> None:
        """One entry per job of an executor's `map` (`names[i]` names job i)."""
        for name, placement, result in zip(names, getattr(ex, "placements", [None] * len(names)), results):
            failed = isinstance(result, dict) and result.get("status") == "failed"
            self.add(stage, name, placement, "failed" if failed else "ok",
                     result.get("reason") if failed else None)


_CURRENT: list[JobLedger] = []


@contextmanager
def job_ledger(out: Path, cfg: PipelineConfig) -> Iterator[JobLedger]:
    """The run's ledger for the duration of the run (`current_ledger` finds it from any stage)."""
    clear_running(out)  # a killed run's jobs are not running any more
    ledger = JobLedger(out / "jobs.json", cfg.executor.name, cfg.executor.address)
    _CURRENT.append(ledger)
    try:
        yield ledger
    finally:
        _CURRENT.remove(ledger)


def current_ledger() -> JobLedger | None:
    return _CURRENT[-1] if _CURRENT else None


def _abs(path) -> str:
    """A path as a task on another node (another working directory) must read it."""
    return str(Path(path).resolve())


def _on_ray(cfg: PipelineConfig) -> bool:
    return cfg.executor.name == "ray"


def _remote(cfg: PipelineConfig, fn: Callable[[dict], dict], job: dict, stage: str, name: str) -> dict:
    """`fn(job)` as one Ray task, recorded in the ledger."""
    # fresh=False: a worker runs job after job (torch imported once per worker, not once per job);
    # optimize still runs every chain in a child process of its own
    ex = get_executor("ray", address=cfg.executor.address, fresh=False, label=f"pilotopt {stage} {name}")
    t0 = time.perf_counter()
    result = ex.map(fn, [job])[0]
    ledger = current_ledger()
    if ledger is not None:
        ledger.add(stage, name, ex.placements[0], result.get("status", "ok"), result.get("reason"),
                   time.perf_counter() - t0)
    return result


def _local(out: Path, stage: str, name: str, work: Callable[[], object]):
    t0 = time.perf_counter()
    status, reason = "failed", "stopped"
    try:
        with running(out, stage, name):
            value = work()
        status, reason = "ok", None
        return value
    except Exception as exc:  # noqa: BLE001 - recorded, then raised on
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise
    finally:
        ledger = current_ledger()
        if ledger is not None:
            ledger.add(stage, name, {"node_id": "local", "host": socket.gethostname(), "attempts": 1,
                                     "node_losses": []}, status, reason, time.perf_counter() - t0)


def run_train(cfg: PipelineConfig, out: Path, data_roots: list[Path], fw: str, threads: int, say: Say) -> Path:
    """Train `fw`'s baseline here or as a Ray task; a failed remote job stops the run in one line."""
    if not _on_ray(cfg):
        return _local(out, "train", fw, lambda: train_baseline(cfg, out, data_roots, fw, threads, say))
    result = _remote(cfg, train_job, {"config": cfg.model_dump(mode="json"), "out": _abs(out),
                                      "data": [_abs(p) for p in data_roots], "framework": fw, "threads": threads},
                     "train", fw)
    if result.get("status") == "failed":
        raise StageJobFailed(f"training the {fw} baseline failed: {result.get('reason')}; rerun to resume "
                             "(finished stages are kept)")
    return Path(result["model"])


def run_optimize(cfg: PipelineConfig, out: Path, data_roots, baseline: Path, job, threads: int, tagged: bool,
                 say: Say, chain_names: Callable[[list, dict], list[str]], given: dict | None = None) -> list[Variant]:
    """One technique group here or as a Ray task. A remote group that failed as a whole (its node
    lost beyond the retries, a worker that died outside any chain's child) fails each of its
    variants with the reason; the others go on."""
    fw, items, variants = job
    name = f"{fw}: {', '.join(chain_names(items, variants))}"
    if not _on_ray(cfg):
        return _local(out, "optimize", name,
                      lambda: optimize_group(cfg, out, data_roots, baseline, job, threads, tagged, say, given))
    if given and isinstance(given.get("contract"), str) and Path(given["contract"]).is_file():
        given = {**given, "contract": _abs(given["contract"])}  # a contract file, read where the job runs
    result = _remote(cfg, optimize_job, {"config": cfg.model_dump(mode="json"), "out": _abs(out),
                                         "data": [_abs(p) for p in data_roots], "baseline": _abs(baseline),
                                         "framework": fw, "items": list(items), "variants": variants,
                                         "threads": threads, "tagged": tagged, "given": given, "name": name},
                     "optimize", name)
    if result.get("status") == "failed":
        say(f"{fw}: technique group {', '.join(chain_names(items, variants))} failed where it ran: "
            f"{result.get('reason')}")
        return [Variant(name=n, runtime="", artifact=None, framework=fw, status="failed",
                        reason=f"its Ray job failed: {result.get('reason')}") for n in chain_names(items, variants)]
    return [variant_from_json(doc) for doc in result["variants"]]
