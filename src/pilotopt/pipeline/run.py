"""`run_pipeline`: data -> baselines -> every technique -> offline evaluation -> closed-loop drives
-> report, in one output folder. Each stage caches its output (keyed by its inputs and settings)
and writes atomically, so a rerun does nothing new and a killed run resumes where it stopped.

OUT/config.yaml      the resolved configuration
OUT/data/            generated recordings (unless data.path is given)
OUT/cache/           preprocessed frames
OUT/train/<fw>/      trained baselines (torch, tf)
OUT/variants/<name>/ one folder per technique (variant.json + artifact)
OUT/offline/         results.json / results.csv of the offline harness
OUT/closed_loop/<variant>/<circuit>_<direction>.json|.png
OUT/report/          results.json, results.csv, report.md, report.html, plots
OUT/run.json         stage timings and what was reused"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Callable

from pilotopt.artifacts import artifact_digest, open_artifact
from pilotopt.atomic import atomic_path, ensure_writable_dir, sweep_stale, write_json, write_text
from pilotopt.contracts import load_contract
from pilotopt.deploy import deploy_variant
from pilotopt.errors import PilotoptError, one_line
from pilotopt.evaluate.harness import evaluate_artifacts
from pilotopt.isolation import child_env
from pilotopt.pipeline.breaking import breaking_points, chosen_variants, known_verdicts
from pilotopt.pipeline.config import (PipelineConfig, referenced_techniques, technique_overrides, technique_plan,
                                      variant_plan)
from pilotopt.pipeline.drive_jobs import cached_record, drive_record_path, drive_variant, new_record
from pilotopt.pipeline.executors import get_executor
from pilotopt.pipeline.stage_jobs import current_ledger, job_ledger, run_optimize, run_train
from pilotopt.pipeline.tracking import make_tracker
from pilotopt.report import build_report
from pilotopt.decide import baseline_keys, recommend, summarize
from pilotopt.records import Drive, DriveJob, OfflineRow, VariantSummary, drives_of, offline_rows, variant_key
from pilotopt.targets import parse_target
from pilotopt.techniques import techniques
from pilotopt.techniques._chain import chain_from_mapping, plan_chains, step_overrides

Say = Callable[[str], None]


class StageClock:
    """Wall time per stage, for run.json and the report's meta section."""

    def __init__(self, say: Say):
        self.say = say
        self.stages: dict[str, dict] = {}

    def __call__(self, name: str):
        clock = self

        class _Stage:
            def __enter__(self):
                self.t0 = time.perf_counter()
                clock.say(f"== {name}")
                return self

            def __exit__(self, *exc):
                took = time.perf_counter() - self.t0
                clock.record(name, took, exc[0] is None)
                return False

        return _Stage()

    def record(self, name: str, seconds: float, ok: bool = True) -> None:
        """A stage timed by its caller (stages that overlap)."""
        self.stages[name] = {"seconds": round(seconds, 2), "ok": ok}
        if ok:
            self.say(f"== {name}: done in {seconds:.1f} s")


def run_pipeline(cfg: PipelineConfig, out: Path | str, say: Say = print) -> dict:
    """Run every stage; returns {"report": paths, "stages": timings, ...}."""
    out = ensure_writable_dir(out)
    if cfg.executor.name == "ray":  # every path a job carries is read on another node, in another directory
        out = out.resolve()
    t_start = time.perf_counter()
    stale = sweep_stale(out)
    if stale:
        say(f"removed {len(stale)} half-written file(s) left by an interrupted run")
    import yaml

    write_text(out / "config.yaml", yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
    # a Ray run connects once and checks every node sees the run folder before any work
    executor = get_executor(cfg.executor.name, workers=cfg.executor.workers, address=cfg.executor.address)
    with executor.session(shared=out if cfg.executor.name == "ray" else None), job_ledger(out, cfg):
        clock = StageClock(say)
        with clock("data"):
            data_roots = _data(cfg, out, say)
        if cfg.model.path is None and overlaps_training(cfg):
            planned = _train_and_optimize(cfg, out, data_roots, clock, say)
        else:
            with clock("train"):
                baselines = _given_model(cfg, say) if cfg.model.path is not None else _train(cfg, out, data_roots, say)
            with clock("optimize"):
                planned = _optimize(cfg, out, data_roots, baselines, say)
        with clock("offline evaluation"):
            offline = _offline(cfg, out, data_roots, say)
        with clock("closed loop"):
            drives = _closed_loop(cfg, out, offline, planned, say)
        breaking = []
        if cfg.closed_loop.breaking_points and drives:
            with clock("breaking points"):
                breaking = _breaking_points(cfg, out, offline, drives, planned, say)
        with clock("report"):
            paths = _report(cfg, out, offline, drives, planned, clock, t_start, breaking)
    summary = {"schema": "pilotopt.run/1", "out": str(out), "profile": cfg.profile, "stages": clock.stages,
               "total_seconds": round(time.perf_counter() - t_start, 2), "report": {k: str(v) for k, v in paths.items()}}
    write_json(out / "run.json", summary)
    if cfg.mlflow:
        _track(cfg, out, offline, drives, paths)
    return summary


# -- stages ----------------------------------------------------------------------------------------
def _data(cfg: PipelineConfig, out: Path, say: Say) -> list[Path]:
    if cfg.data.path:
        say(f"using the dataset in {', '.join(map(str, cfg.data.path))}")
        return [Path(p) for p in cfg.data.path]
    # scipy: imported on first use, not with this module
    from pilotopt.sim.dataset import DatasetConfig, generate_dataset

    dc = DatasetConfig(circuits=tuple(cfg.data.circuits), directions=tuple(cfg.data.directions),
                       laps=cfg.data.laps, seed=cfg.seed)
    last = [0.0]

    def progress(done: int, total: int) -> None:
        if time.perf_counter() - last[0] > 10:
            last[0] = time.perf_counter()
            say(f"recording: {done}/{total} frames")

    summary = generate_dataset(out / "data", dc, workers=cfg.data.workers, progress=progress)
    reused = summary["skipped_existing"]
    say(f"dataset: {len(summary['recordings'])} recordings in {out / 'data'} ("
        + (f"{reused} reused, " if reused else "") + f"{summary['frames_generated']} frames recorded now)")
    return [out / "data"]


def side_by_side(work: Callable, items: list, at_once: int) -> list:
    """[work(item) for item in items], `at_once` at a time, results in order; after a failure
    nothing new starts, and it is raised once the running ones have finished."""
    if at_once <= 1:
        return [work(item) for item in items]
    return queue_side_by_side(work, items, at_once, lambda i, finished: True)


def queue_side_by_side(work: Callable, items: list, at_once: int, ready: Callable[[int, set], bool],
                       on_done: Callable[[int], None] | None = None) -> list:
    """[work(item) for item in items], `at_once` at a time: each worker takes the first item, in
    list order, that `ready(index, finished indices)` allows. After a failure nothing new starts;
    the first failure is raised once the running items have finished."""
    import threading

    results: dict[int, object] = {}
    pending = list(range(len(items)))
    finished: set[int] = set()
    failures: list[BaseException] = []
    cond = threading.Condition()

    def worker() -> None:
        while True:
            with cond:
                while True:
                    if failures or not pending:
                        return
                    i = next((i for i in pending if ready(i, finished)), None)
                    if i is not None:
                        pending.remove(i)
                        break
                    cond.wait()
            try:
                result = work(items[i])
            except BaseException as exc:  # noqa: BLE001 - raised below, once the others stop
                with cond:
                    failures.append(exc)
                    cond.notify_all()
                return
            with cond:
                results[i] = result
                finished.add(i)
                cond.notify_all()
            if on_done is not None:
                on_done(i)

    threads = [threading.Thread(target=worker, name=f"pilotopt-build-{k}") for k in range(max(1, at_once))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        raise failures[0]
    if pending:
        raise RuntimeError(f"{len(pending)} job(s) never became ready")
    return [results[i] for i in range(len(items))]


def per_framework(cfg: PipelineConfig, frameworks, work: Callable[[str, int], object], at_once: int = 1) -> dict:
    """{framework: work(framework, threads)}, `at_once` frameworks at a time, the threads shared
    between them."""
    frameworks = list(frameworks)
    at_once = max(1, min(at_once, len(frameworks)))
    threads = max(1, cfg.threads // at_once)
    return dict(zip(frameworks, side_by_side(lambda fw: work(fw, threads), frameworks, at_once)))


def _train(cfg: PipelineConfig, out: Path, data_roots: list[Path], say: Say) -> dict[str, Path]:
    # side by side, one thread each: measured in one demo on 2 cores, torch + tf trained in 536 s
    # against 232 s + about 360 s one after another with both threads
    return per_framework(cfg, cfg.train.frameworks, lambda fw, threads: run_train(cfg, out, data_roots, fw, threads, say),
                         cfg.executor.build_workers)


def _given_model(cfg: PipelineConfig, say: Say) -> dict[str, Path]:
    """A model trained elsewhere stands in for training: {"given": its path}."""
    art = open_artifact(cfg.model.path, arch=cfg.model.arch, arch_args=cfg.model.arch_args or None,
                        contract=cfg.model.input)
    say(f"baseline: the given model {art.path} ({art.kind.description}; input contract {art.contract.summary()}); "
        "training skipped")
    for note in art.contract.notes:
        say(f"input contract: {note}")
    return {"given": art.path}


def _optimize(cfg: PipelineConfig, out: Path, data_roots, baselines: dict[str, Path], say: Say) -> list[dict]:
    """Every planned technique, per framework (or for the given model); returns the plan with each
    technique's status."""
    given, kind = {}, None
    if "given" in baselines:
        given = {"arch": cfg.model.arch, "arch_args": cfg.model.arch_args or None, "contract": cfg.model.input}
        kind = open_artifact(baselines["given"], **given).kind.name
    plan, named, jobs = _optimize_plan(cfg, kind)
    at_once = max(1, min(cfg.executor.build_workers, len(jobs)))
    threads = max(1, cfg.threads // at_once)
    # each technique runs in a child process, much of it single-threaded (imports, conversion,
    # calibration): `build_workers` groups at a time from one queue over both frameworks, so one
    # framework's long fine-tunes do not leave a core idle once the other's are done
    done = side_by_side(lambda job: run_optimize(cfg, out, data_roots, baselines[job[0]], job, threads,
                                                 at_once > 1, say, chain_names, given), jobs, at_once)
    return _planned_rows(plan, named, jobs, done)


def _optimize_plan(cfg: PipelineConfig, kind: str | None) -> tuple[dict, dict, list]:
    """(techniques per framework, named chains per framework, the queue of prefix groups, longest
    fine-tunes first)."""
    named = variant_plan(cfg, kind)
    plan = {fw: names for fw, names in technique_plan(cfg, kind).items() if names or named.get(fw)}
    jobs = longest_first(prefix_groups(plan, named), lambda job: fine_tune_work(cfg, job[1], job[2]))
    return plan, named, jobs


def _planned_rows(plan: dict, named: dict, jobs: list, done: list) -> list[dict]:
    by_name = {(job[0], v.name): v for job, variants in zip(jobs, done) for v in variants}
    planned = []
    for fw in plan:
        for name in chain_names(plan[fw], named.get(fw) or {}):
            v = by_name[(fw, name)]
            planned.append({"name": v.name, "framework": v.framework if fw == "given" else fw, "status": v.status,
                            "reason": v.reason, "description": _description(v), "steps": list(v.steps or [v.name])})
    return planned


def overlaps_training(cfg: PipelineConfig) -> bool:
    """Whether a framework's techniques start as soon as its own baseline is trained, while the
    other framework still trains (two frameworks built side by side)."""
    return cfg.executor.build_workers > 1 and len(cfg.train.frameworks) > 1


def _train_and_optimize(cfg: PipelineConfig, out: Path, data_roots, clock: StageClock, say: Say) -> list[dict]:
    """The train and optimize stages as one queue: both baselines first, side by side, then each
    technique group once its framework's baseline exists, so the core that trained the faster
    baseline goes on to its techniques instead of waiting (in the demo torch trained in 167 s, tf in
    247 s). "train" is timed until the last baseline, "optimize" from there to the last variant."""
    frameworks = list(cfg.train.frameworks)
    plan, named, jobs = _optimize_plan(cfg, None)
    at_once = max(1, min(cfg.executor.build_workers, len(frameworks) + len(jobs)))
    threads = max(1, cfg.threads // at_once)
    items = [("train", fw) for fw in frameworks] + [("optimize", job) for job in jobs]
    baselines: dict[str, Path] = {}
    t0 = time.perf_counter()
    trained_at = [t0]
    say("== train")

    def work(item):
        what, arg = item
        if what == "train":
            baselines[arg] = run_train(cfg, out, data_roots, arg, threads, say)
            return baselines[arg]
        return run_optimize(cfg, out, data_roots, baselines[arg[0]], arg, threads, at_once > 1, say, chain_names)

    def ready(i: int, finished: set) -> bool:
        what, arg = items[i]
        return what == "train" or frameworks.index(arg[0]) in finished

    def on_done(i: int) -> None:
        if items[i][0] == "train" and len(baselines) == len(frameworks):
            trained_at[0] = time.perf_counter()
            clock.record("train", trained_at[0] - t0)
            say("== optimize (each framework's techniques started once its baseline was trained)")

    try:
        done = queue_side_by_side(work, items, at_once, ready, on_done)
    except BaseException:
        clock.stages.setdefault("train", {"seconds": round(time.perf_counter() - t0, 2), "ok": False})
        clock.stages["optimize"] = {"seconds": round(time.perf_counter() - trained_at[0], 2), "ok": False}
        raise
    clock.record("optimize", time.perf_counter() - trained_at[0])
    return _planned_rows(plan, named, jobs, done[len(frameworks):])


def chain_names(items: list[str], variants: dict) -> list[str]:
    return [c.name for c in plan_chains(items, techniques(), variants)]


def prefix_groups(plan: dict[str, list[str]], named: dict[str, dict]) -> list[tuple[str, list[str], dict]]:
    """The optimize stage's work as (framework, items, named variants) groups, one per first step:
    chains that share a first step share their cached prefixes, so they run one after another in one
    group, while groups may run side by side. Fine-tunes (the long groups) first, so the short
    conversions fill the cores at the end; frameworks alternate, in plan order."""
    known = techniques()
    per_fw, trains = [], set()
    for fw, items in plan.items():
        groups: dict[str, tuple[list, dict]] = {}
        firsts = [(plan_chains([item], known)[0].steps[0].technique, item, None) for item in items]
        firsts += [(chain_from_mapping(v, spec, known).steps[0].technique, v, spec)
                   for v, spec in (named.get(fw) or {}).items()]
        for first, name, spec in firsts:
            its, vs = groups.setdefault(first.name, ([], {}))
            if spec is None:
                its.append(name)
            else:
                vs[name] = spec
            if first.needs_data:
                trains.add((fw, first.name))
        per_fw.append([(key, (fw, its, vs)) for key, (its, vs) in groups.items()])
    out = []
    for i in range(max((len(g) for g in per_fw), default=0)):
        out += [(g[i][1], (g[i][1][0], g[i][0]) in trains) for g in per_fw if i < len(g)]
    return [job for job, _ in sorted(out, key=lambda pair: not pair[1])]


def fine_tune_work(cfg: PipelineConfig, items: list[str], variants: dict) -> float:
    """A group's fine-tuning work in epochs x training frames over every step that trains (each
    cached prefix once; a cap of 0, the whole split, counts as 8192 frames; a calibration as 1):
    enough to order the queue, not a time estimate."""
    import dataclasses

    chains = plan_chains(items, techniques(), variants)
    layers = technique_overrides(cfg, referenced_techniques(cfg, items, variants))
    seen, work = set(), 0.0
    for chain in chains:
        for i, step in enumerate(chain.steps):
            prefix = json.dumps([(s.technique.name, step_overrides(chain, j, layers))
                                 for j, s in enumerate(chain.steps[:i + 1])], sort_keys=True, default=str)
            if prefix in seen or not step.technique.needs_data:
                continue
            seen.add(prefix)
            values = {**dataclasses.asdict(step.technique.settings_cls()), **step_overrides(chain, i, layers)}
            epochs = [v for k, v in values.items() if k.endswith("epochs") and isinstance(v, int)]
            # a step that only calibrates (no epochs) counts 1: before conversions, after any fine-tune
            work += sum(epochs) * (values.get("max_train_frames") or 8192) if epochs else 1
    return work


def longest_first(jobs: list, work: Callable) -> list:
    """`jobs` by decreasing `work(job)`, ties in their given order: with two workers, the job that
    starts last should be a short one, or one core idles while the other finishes it (tf_pcqat ran
    alone for its last minutes in the demo)."""
    return [job for _, job in sorted(enumerate(jobs), key=lambda pair: (-work(pair[1]), pair[0]))]


def _description(v) -> str:
    """A registered technique's description, or a chain's steps."""
    known = techniques().get(v.name)
    return known.description if known is not None else " -> ".join(v.steps or [v.name])


def _offline(cfg: PipelineConfig, out: Path, data_roots, say: Say) -> dict:
    def progress(phase, done, total, info):
        if phase == "variant" and info.get("state") == "done":
            row = info["row"]
            why = f": {row['reason']}" if row.get("reason") and row["status"] != "ok" else ""
            say(f"offline [{done}/{total}] {row['name']}: {row['status']}{' (cached)' if row.get('cached') else ''}{why}")
        if phase == "target":
            tl = info["result"]
            say(f"on the target [{done}/{total}] {info['name']}: " + (
                f"brain step p50 {tl.p50_ms:.2f} ms on {tl.device.text()}" if tl.ok else tl.reason))

    o = cfg.offline
    doc = evaluate_artifacts(out / "variants", data_roots, out / "offline", threads=cfg.threads,
                             test_circuits=tuple(cfg.data.test_circuits), cache_dir=out / "cache",
                             min_calls=o.min_calls, min_seconds=o.min_seconds, throughput_batch=o.throughput_batch,
                             max_frames=o.max_frames, progress=progress, timeout=o.timeout_s,
                             target=parse_target(cfg.target.device) if cfg.target.device else None,
                             target_iterations=cfg.target.iterations)
    if o.peak_seconds > 0:
        doc["machine_peaks"] = _machine_peaks(cfg, out / "offline" / "machine_peaks.json", say)
    return doc


def _machine_peaks(cfg: PipelineConfig, path: Path, say: Say) -> dict | None:
    """The machine's GEMM peaks on the run's threads (`pilotopt bench machine` in a child process),
    measured once beside the offline latencies and kept with them."""
    try:
        doc = json.loads(path.read_text())
        if doc.get("threads") == cfg.threads:
            return doc
    except (OSError, ValueError):
        pass
    import subprocess
    import sys

    say("offline: measuring the machine's fp32 / int8 GEMM peaks (pilotopt bench machine)")
    r = subprocess.run([sys.executable, "-m", "pilotopt", "bench", "machine", "--out", str(path), "--threads",
                        str(cfg.threads), "--seconds", str(cfg.offline.peak_seconds)], capture_output=True, text=True,
                       env=child_env(cfg.threads), timeout=600)
    if r.returncode != 0:
        say(f"offline: the machine's peaks were not measured ({(r.stderr or r.stdout).strip().splitlines()[-1:]})")
        return None
    return json.loads(path.read_text())


def _drive_base(cfg: PipelineConfig, out: Path, row: OfflineRow, digest: str) -> dict:
    cl = cfg.closed_loop
    return {"variant": row.name, "framework": row.framework, "runtime": row.runtime,
            "artifact": row.artifact, "artifact_sha256": digest, "contract": row.contract,
            "arch": row.arch, "arch_args": row.arch_args or {}, "mode": cl.mode, "laps": cl.laps,
            "timeout_s": cl.timeout_s, "latency_scale": cl.latency_scale, "latency": cl.latency,
            "latency_samples_ms": drive_samples(cfg, row) if cl.latency == "distribution" else None,
            "interventions": cl.interventions, "seed": cfg.seed, "threads": drive_threads(cfg), "videos": cl.videos,
            "out_dir": str(out / "closed_loop")}


def drive_samples(cfg: PipelineConfig, row: OfflineRow) -> list[float] | None:
    """What a realtime drive draws its latency from: the brain step timed on the target device when
    the run has one and the variant ran there, else this machine's (a variant the device cannot
    run is still driven, at this machine's speed, as a reference: it is never recommended)."""
    t = row.on_target
    if cfg.target.device and t is not None and t.ok and t.brain_step_samples_ms:
        return t.brain_step_samples_ms
    return row.brain_step_samples_ms


def drive_threads(cfg: PipelineConfig) -> int:
    """The model threads of each drive: the cores shared by the drives running at once, when their
    latency is drawn from the offline samples (their own speed changes no trajectory, and two
    drives of two threads each on two cores slowed torch brains from 1.3 ms to 10-20 ms); wall-clock
    latency, or one drive at a time, keeps the run's threads."""
    workers = cfg.executor.workers
    if cfg.closed_loop.latency == "wall" or workers <= 1:
        return cfg.threads
    return max(1, cfg.threads // workers)


def planned_rows(offline: dict, planned: list[dict]) -> list[OfflineRow]:
    """The offline rows of this run's planned variants."""
    wanted = {p["name"] for p in planned}
    return [r for r in offline_rows(offline) if r.name in wanted]


def drive_jobs(cfg: PipelineConfig, out: Path, rows: list[OfflineRow], conditions: list[str] | None = None,
               only: set[str] | None = None, repeats: int | None = None, plot: bool = True) -> list[dict]:
    """One job per ok variant of `rows` (or of `only`): its drives on every circuit, direction,
    condition (default: the default condition only) and repetition (`repeats`, default
    closed_loop.repeats). The first repetition of each condition is plotted (unless `plot` is False)."""
    repeats = cfg.closed_loop.repeats if repeats is None else repeats
    jobs = []
    for row in rows:
        if row.status != "ok" or not row.artifact or (only is not None and row.name not in only):
            continue
        base = _drive_base(cfg, out, row, artifact_digest(Path(row.artifact)))
        drives = [DriveJob(**base, circuit=circuit, direction=direction, condition=condition, repetition=rep,
                           plot=plot and rep == 0)
                  for condition in (conditions or ["default"]) for circuit in cfg.drive_circuits
                  for direction in cfg.closed_loop.directions for rep in range(repeats)]
        jobs.append({"variant": row.name, "framework": row.framework, "drives": drives})
    return jobs


def decision_rows(offline: dict, drives: list[dict], planned: list[dict]) -> tuple[list[VariantSummary], list[Drive]]:
    """(the summaries of this run's planned variants, their drives): what the shortlist, the
    coverage rounds and the breaking points decide on, as the report will."""
    records = drives_of(drives)
    return summarize(planned_rows(offline, planned), records), records


def shortlist(cfg: PipelineConfig, offline: dict, drives: list[dict], planned: list[dict]) -> list[str]:
    """The variants driven under the conditions: the baselines and the `closed_loop.shortlist`
    best candidates by the report's rule on the default-condition drives."""
    rows, _ = decision_rows(offline, drives, planned)
    ok = {r.key: r for r in rows if r.status == "ok" and r.cl_runs_total}
    rec = recommend(list(ok.values()), _constraints(cfg))
    bases = baseline_keys(rows)
    chosen = [r.name for r in ok.values() if r.key in bases]
    ranked = list(rec["ranking"]) + sorted((k for k in ok if k not in rec["ranking"]),
                                           key=lambda k: -(ok[k].cl_score_mean or 0.0))
    extra = 0
    for key in ranked:
        if extra >= cfg.closed_loop.shortlist:
            break
        if ok[key].name not in chosen:
            chosen.append(ok[key].name)
            extra += 1
    return chosen


def untested_candidates(cfg: PipelineConfig, offline: dict, drives: list[dict], planned: list[dict],
                        covered: set[str]) -> list[str]:
    """When the recommendation would be a baseline, or a candidate that fails a condition (the gate's
    fallback), because every driven-everywhere candidate failed the condition gate: the next
    `closed_loop.shortlist` candidates (fastest first) that the gate excluded only for never having
    been driven under a condition. [] when nothing is worth driving."""
    rows, _ = decision_rows(offline, drives, planned)
    rec = recommend(rows, _constraints(cfg))
    if rec["recommended"] is not None and rec["recommended"] not in baseline_keys(rows) \
            and not rec["condition_fallback"]:
        return []
    by_key = {r.key: r for r in rows}
    unseen = [k for k, why in rec["condition_reasons"].items()
              if why and all(w.endswith(": not driven") for w in why) and by_key[k].name not in covered]
    unseen.sort(key=lambda k: (by_key[k].latency_p50_ms or float("inf"), k))
    return [by_key[k].name for k in unseen[:cfg.closed_loop.shortlist]]


def _constraints(cfg: PipelineConfig) -> dict:
    r = cfg.report
    return {"max_latency_ms": r.max_latency_ms, "max_size_mb": r.max_size_mb, "must_complete": r.must_complete,
            "score_tolerance": r.score_tolerance, "latency_tie": r.latency_tie, "relax_conditions": r.relax_conditions}


def _closed_loop(cfg: PipelineConfig, out: Path, offline: dict, planned: list[dict], say: Say) -> list[dict]:
    """Every variant in the default condition; with conditions, that is a screen of one drive each,
    and the shortlist then gets every repetition in the default condition and under each condition."""
    cl = cfg.closed_loop
    rows = planned_rows(offline, planned)
    if not cl.conditions:
        return drive_all(cfg, drive_jobs(cfg, out, rows), "default condition", say)
    screen = drive_all(cfg, drive_jobs(cfg, out, rows, repeats=1), "default condition, screen", say)
    names = shortlist(cfg, offline, screen, planned)
    say(f"closed loop: {len(names)} variants, {cl.repeats} repetitions each, in the default condition and under "
        f"{len(cl.conditions)} conditions ({', '.join(cl.conditions)}): {', '.join(names)}")
    deep = drive_all(cfg, drive_jobs(cfg, out, rows, ["default", *cl.conditions], set(names)),
                      "shortlist", say)
    covered = set(names)
    for round_ in range(1, cl.more_rounds + 1):
        more = untested_candidates(cfg, offline, _merge_drives(screen, deep), planned, covered)
        if not more:
            break
        say(f"closed loop: the condition gate left no shortlisted candidate; round {round_}/{cl.more_rounds} drives "
            f"the next {len(more)} under the conditions: {', '.join(more)}")
        deep += drive_all(cfg, drive_jobs(cfg, out, rows, ["default", *cl.conditions], set(more)),
                          f"shortlist round {round_ + 1}", say)
        covered |= set(more)
    return _merge_drives(screen, deep)


def _breaking_points(cfg: PipelineConfig, out: Path, offline: dict, drives: list[dict], planned: list[dict],
                     say: Say) -> list[dict]:
    """Breaking points of the recommended variant, the runner-up and the baselines (pipeline.breaking)."""
    rows, records = decision_rows(offline, drives, planned)
    cl = cfg.closed_loop
    chosen = chosen_variants(rows, _constraints(cfg))
    known = known_verdicts(records, chosen, cl.repeats * len(cfg.drive_circuits) * len(cl.directions))
    protocol = {}  # each chosen variant's drives in the default condition: a probe's, with slow:S
    for job in drive_jobs(cfg, out, planned_rows(offline, planned), ["default"], {c["name"] for c in chosen},
                          plot=False):
        protocol[variant_key(job["framework"], job["variant"])] = job["drives"]
    ex = get_executor(cfg.executor.name, workers=cfg.executor.workers, address=cfg.executor.address,
                      fresh=cl.latency == "wall")
    def run_map(fn, jobs, on_done=None):
        results = ex.map(fn, jobs, on_done)
        _ledger_map("breaking points", [job.get("variant", "?") for job in jobs], ex, results)
        return results

    return breaking_points(chosen, protocol, run_map, latency_scale=cl.latency_scale, cap=cl.breaking_cap,
                           resolution=cl.breaking_resolution, say=say, known=known)


def _ledger_map(stage: str, names: list[str], ex, results: list) -> None:
    ledger = current_ledger()
    if ledger is not None:
        ledger.add_map(stage, names, ex, results)


def _merge_drives(screen: list[dict], deep: list[dict]) -> list[dict]:
    """The screen's drives that a deeper drive of the same cell and repetition did not replace, then those."""
    seen = {(d["variant"], d["circuit"], d["direction"], d.get("condition"), d.get("repetition")) for d in deep}
    return [d for d in screen if (d["variant"], d["circuit"], d["direction"], d.get("condition"),
                                  d.get("repetition")) not in seen] + deep


def drive_all(cfg: PipelineConfig, jobs: list[dict], what: str, say: Say) -> list[dict]:
    records: dict[tuple[int, int], dict] = {}
    for j, job in enumerate(jobs):
        for d, drive in enumerate(job["drives"]):
            rec = cached_record(drive)
            if rec is not None:
                records[(j, d)] = rec
    total = sum(len(job["drives"]) for job in jobs)
    todo = [j for j, job in enumerate(jobs) if any((j, d) not in records for d in range(len(job["drives"])))]
    if records:
        say(f"closed loop ({what}): {len(records)} of {total} drives reused")
    if todo:
        if cfg.closed_loop.latency == "wall" and cfg.closed_loop.mode == "realtime" and cfg.executor.workers > 1:
            say(f"note: wall-clock latency with {cfg.executor.workers} drives at once: they compete for the cores "
                "and slow each other's brains; use closed_loop.latency: distribution or executor.workers: 1")
        # wall-clock latency is timed in a fresh process per job; drawn latency reuses the workers
        ex = get_executor(cfg.executor.name, workers=cfg.executor.workers, address=cfg.executor.address,
                          fresh=cfg.closed_loop.latency == "wall")
        finished = [0]

        def on_done(i, job, result):
            finished[0] += 1
            recs = drives_of(_as_records(job, result))
            ok = [r for r in recs if r.status == "ok"]
            if ok:
                what_ = (f"{sum(r.clean_lap for r in ok)}/{len(recs)} clean laps, score "
                         f"{sum(r.score for r in ok) / len(ok):.1f}")
            else:
                what_ = f"{recs[0].status}: {recs[0].reason}" if recs else "no drives"
            say(f"drive [{finished[0]}/{len(todo)}] {job['variant']} ({len(recs)} drives): {what_}")

        results = ex.map(drive_variant, [jobs[j] for j in todo], on_done=on_done)
        _ledger_map(f"closed loop ({what})", [jobs[j]["variant"] for j in todo], ex, results)
        for j, result in zip(todo, results):
            for d, rec in enumerate(_as_records(jobs[j], result)):
                records[(j, d)] = rec
    return [records[(j, d)] for j, job in enumerate(jobs) for d in range(len(job["drives"])) if (j, d) in records]


def _as_records(job: dict, result) -> list[dict]:
    """A worker that died (or an executor error) still gives a record for each of its drives: the
    ones it finished are on disk; the others are failed with its reason."""
    if isinstance(result, list) and len(result) == len(job["drives"]):
        return result
    reason = (result or {}).get("reason") if isinstance(result, dict) else str(result)
    out = []
    for drive in job["drives"]:
        rec = cached_record(drive)
        if rec is None:
            rec = new_record(drive)
            rec["reason"] = reason
            rec["key"] = None  # never reused: a crash is retried on the next run
            path = drive_record_path(drive)
            path.parent.mkdir(parents=True, exist_ok=True)
            write_json(path, rec)
        out.append(rec)
    return out


def _report(cfg: PipelineConfig, out: Path, offline: dict, drives: list[dict], planned: list[dict],
            clock: StageClock, t_start: float, breaking: list[dict] | None = None) -> dict:
    wanted = {p["name"] for p in planned}
    offline = {**offline, "variants": [r for r in offline["variants"] if r["name"] in wanted]}
    offline = {**offline, "variants": [{k: v for k, v in r.items() if k != "brain_step_samples_ms"}
                                       for r in offline["variants"]]}
    drives = [_with_paths(r, out / "closed_loop", out / "report") for r in drives]
    meta = {"profile": cfg.profile, "seed": cfg.seed, "threads": cfg.threads, "config": cfg.model_dump(mode="json"),
            "stages": dict(clock.stages), "elapsed_seconds": round(time.perf_counter() - t_start, 1),
            "machine": offline.get("machine"), "config_digest": hashlib.sha256(
                repr(cfg.model_dump(mode="json")).encode()).hexdigest()[:12]}
    if cfg.model.path is not None:
        meta["baseline"] = (f"the given model {cfg.model.path}"
                            + (f" (architecture {cfg.model.arch})" if cfg.model.arch else "")
                            + f", input contract {load_contract(cfg.model.input).name if cfg.model.input else 'detected'}"
                            + "; training was skipped")
    search = None
    try:  # a `pilotopt search` over this run: its front joins the report
        search = json.loads((out / "search" / "results.json").read_text())
    except (OSError, ValueError):
        pass
    paths = build_report(offline, drives, planned, out / "report", constraints=_constraints(cfg), meta=meta,
                         search=search, breaking_points=breaking)
    deployed = _deploy(offline, paths, out / "report" / "deploy")
    if deployed is not None:
        paths["deploy"] = Path(deployed["folder"])
    return paths


def _deploy(offline: dict, paths: dict, dest: Path) -> dict | None:
    """The recommended variant written for each deploy target that can run it (pilotopt.deploy):
    DEST/edge for `pilotopt-edge` on the car, DEST/behavior-metrics for Behavior Metrics' brains;
    DEST/deploy.json says which targets were written and, for the others, why not."""
    import json
    import shutil

    results = json.loads(Path(paths["results_json"]).read_text())
    rec = results.get("recommendation") or {}
    keys = {r["key"]: r for r in results.get("variants", [])}
    chosen = keys.get(rec.get("recommended"))
    row = next((r for r in offline["variants"] if chosen and r["name"] == chosen.get("name")
                and r.get("artifact") and r["status"] == "ok"), None)
    if row is None:
        shutil.rmtree(dest, ignore_errors=True)  # no recommendation: no stale deployable either
        return None
    written = {}
    with atomic_path(dest) as tmp:
        tmp.mkdir(parents=True)
        for target in ("edge", "behavior-metrics"):
            try:
                done = deploy_variant(Path(row["artifact"]), target, tmp / target)
                written[target] = {"folder": target, "files": done["files"], "notes": done.get("notes", [])}
            except PilotoptError as exc:
                written[target] = {"not_written": one_line(exc)}
        write_json(tmp / "deploy.json", {"schema": "pilotopt.run-deploy/1", "variant": row["name"], "targets": written})
    return {"folder": str(dest), "targets": written}


def _with_paths(rec: dict, root: Path, report_dir: Path) -> dict:
    """Plot and video paths relative to the report folder, whatever the form of --out (a path
    relative to the working directory would be read relative to the report folder and doubled)."""
    import os

    rec = dict(rec)
    for key in ("plot", "video"):
        if rec.get(key):
            rec[key] = os.path.relpath(Path(root).resolve() / rec["variant"] / rec[key], Path(report_dir).resolve())
    return rec


def _track(cfg: PipelineConfig, out: Path, offline: dict, drives: list[dict], paths: dict) -> None:
    tracker = make_tracker(True, out / "mlruns")
    with tracker.start_run(f"pilotopt-{cfg.profile}"):
        tracker.log_params({"profile": cfg.profile, "seed": cfg.seed, "model": cfg.train.model,
                            "epochs": cfg.train.epochs, "frameworks": ",".join(cfg.train.frameworks)})
        for row in offline_rows(offline):
            if row.ok:
                tracker.log_metrics({f"{row.name}.mse": row.mse_mean, f"{row.name}.p50_ms": row.p50_ms,
                                     f"{row.name}.size_mb": row.size_bytes / 1e6})
        for rec in drives_of(drives):
            if rec.status == "ok" and rec.metrics is not None:
                m = rec.metrics
                tag = f"{rec.variant}.{rec.circuit}.{rec.direction}"
                tracker.log_metrics({f"{tag}.completed_pct": m.percentage_completed,
                                     f"{tag}.brain_hz": m.brain_iterations_frequency or 0.0})
        for p in paths.values():
            if Path(p).is_file():
                tracker.log_artifact(Path(p))
