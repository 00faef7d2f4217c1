"""Closed-loop throughput: drives per core-second of the one-car path (`sim.closed_loop.drive`,
one drive after another with the model loaded once, as the pipeline drove until now) against K
cars per process (`drive_many`: one batched model call per brain step of all the cars), for a fast
and a slow variant of a `pilotopt run`, under the emulated latency the run drives with.

Both paths drive the same drives (the default circuit's repetitions 1..K, each with its own
seeded start and sensor noise), in this one process, side by side; core-seconds are this process's
CPU time (every thread of every runtime), so a path that only spreads work over more threads gains
nothing. The JSON also says how far the batched trajectories are from the one-car ones."""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Callable

import numpy as np

from pilotopt import __version__
from pilotopt.artifacts import open_artifact
from pilotopt.bench.host import contention, cpu_name, cpu_snapshot, versions
from pilotopt.errors import BadInputError
from pilotopt.isolation import run_job
from pilotopt.frameworks import import_torch
from pilotopt.records import DriveMetrics, OfflineRow, offline_rows
from pilotopt.runtimes import load_artifact_predictor
from pilotopt.sim.brains.model import ModelBrain, batch_invariant
from pilotopt.sim.closed_loop import DriveConfig, DriveResult, DriveRun, drive, drive_many

BENCH_SCHEMA = "pilotopt.bench.closed_loop/1"
CARS = (1, 4, 16, 64)


def _rows(run: Path) -> list[OfflineRow]:
    path = run / "offline" / "results.json"
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        raise BadInputError(f"'{path}' is missing or not JSON; pass the --out folder of a finished `pilotopt run`") from None
    rows = [r for r in offline_rows(doc) if r.ok and r.artifact and r.brain_step_samples_ms]
    if not rows:
        raise BadInputError(f"'{path}' has no evaluated variant with brain-step latency samples; rerun `pilotopt run`")
    return rows


def pick_variants(rows: list[OfflineRow], names: list[str] | None) -> list[OfflineRow]:
    """The named variants, or the fastest and the slowest brain step of the run."""
    if names:
        by_name = {r.name: r for r in rows}
        missing = [n for n in names if n not in by_name]
        if missing:
            raise BadInputError(f"no evaluated variant {', '.join(missing)} in the run; known: {', '.join(sorted(by_name))}")
        return [by_name[n] for n in names]
    ranked = sorted(rows, key=lambda r: float(np.median(r.brain_step_samples_ms)))
    return [ranked[0], ranked[-1]] if len(ranked) > 1 else ranked


def _configs(row: OfflineRow, k: int, circuit: str, timeout: float | None) -> list[DriveConfig]:
    samples = [x / 1000.0 for x in row.brain_step_samples_ms]
    # repetitions 1..k: each its own seeded start and sensor noise, so every drive costs alike
    # (repetition 0, the canonical start, has no sensor noise and is cheaper)
    return [DriveConfig(circuit=circuit, mode="realtime", latency_samples=samples, repetition=rep, interventions=True,
                        timeout=timeout, warmup_steps=3) for rep in range(1, k + 1)]


def _measured(fn: Callable[[], list[DriveResult]]) -> tuple[list[DriveResult], float, float]:
    t = os.times()
    w0 = time.perf_counter()
    results = fn()
    wall = time.perf_counter() - w0
    u = os.times()
    return results, wall, (u.user - t.user) + (u.system - t.system)


def _figures(results: list[DriveResult], wall: float, cpu: float) -> dict:
    steps = sum(r.metrics.brain_steps for r in results)
    return {"drives": len(results), "brain_steps": steps, "wall_s": round(wall, 3), "core_s": round(cpu, 3),
            "drives_per_core_s": len(results) / cpu if cpu > 0 else None,
            "core_s_per_drive": cpu / len(results), "core_ms_per_brain_step": 1000.0 * cpu / steps if steps else None}


def process_per_drive(row: OfflineRow, cfgs: list[DriveConfig], threads: int) -> dict:
    """The one-car path as the pipeline drove before cars shared a process: each drive a fresh
    interpreter that imports the runtime, loads the model and drives (bench.one_drive). Core
    seconds are the children's CPU time."""
    job = {"variant": row.name, "artifact": row.artifact, "arch": row.arch, "arch_args": row.arch_args,
           "contract": row.contract, "runtime": row.runtime, "threads": threads}
    t, w0, steps = os.times(), time.perf_counter(), 0
    for cfg in cfgs:
        out = run_job(["-m", "pilotopt.bench.one_drive"], {**job, "config": asdict(cfg)}, timeout=900,
                      threads=threads, who=f"the drive process of {row.name}")
        if not out.ok:
            raise BadInputError(out.reason)
        steps += DriveMetrics.from_json(out.reply, f"the drive process of {row.name}").brain_steps
    wall, u = time.perf_counter() - w0, os.times()
    cpu = (u.children_user - t.children_user) + (u.children_system - t.children_system)
    return {"drives": len(cfgs), "brain_steps": steps, "wall_s": round(wall, 3), "core_s": round(cpu, 3),
            "drives_per_core_s": len(cfgs) / cpu if cpu > 0 else None, "core_s_per_drive": cpu / len(cfgs),
            "core_ms_per_brain_step": 1000.0 * cpu / steps if steps else None}


def model_cost(predictor, brain: ModelBrain, cfg: DriveConfig, k: int, min_core_s: float = 0.5) -> float:
    """Core-ms per frame of the model call alone at batch `k` (the frame of the drive's first brain
    step, repeated): what no batching of the simulation can go below. Runtimes that are not
    batch-invariant are called one frame at a time, as step_many does."""
    obs = DriveRun(brain, replace(cfg, warmup_steps=0), warmup=False).observation()
    one = brain.model_input(obs)
    x = np.concatenate([one] * k)
    invariant = k > 1 and batch_invariant(predictor.raw) is not False
    call = (lambda: predictor.raw.predict(x)) if invariant else (lambda: [predictor.raw.predict(one) for _ in range(k)])
    call()  # warm
    calls, t = 0, os.times()
    while True:
        call()
        calls += 1
        u = os.times()
        spent = (u.user - t.user) + (u.system - t.system)
        if spent >= min_core_s and calls >= 3:
            return 1000.0 * spent / (calls * k)


def _gap(single: list[DriveResult], batched: list[DriveResult]) -> dict:
    """How far each batched drive is from the same drive alone: the largest position difference
    over the common ticks, and whether the tick counts and completion agree."""
    dist, same_len, completion = 0.0, True, 0.0
    for a, b in zip(single, batched):
        n = min(len(a.trajectory["x"]), len(b.trajectory["x"]))
        d = np.hypot(a.trajectory["x"][:n] - b.trajectory["x"][:n], a.trajectory["y"][:n] - b.trajectory["y"][:n])
        dist = max(dist, float(d.max()) if n else 0.0)
        same_len &= len(a.trajectory["x"]) == len(b.trajectory["x"])
        completion = max(completion, abs(a.metrics.percentage_completed - b.metrics.percentage_completed))
    return {"max_position_diff_m": dist, "same_tick_counts": bool(same_len),
            "max_completion_diff_pct": completion}


def bench_closed_loop(run: Path | str, variants: list[str] | None = None, cars: tuple[int, ...] = CARS,
                      single_drives: int = 16, circuit: str = "simple", timeout: float | None = None,
                      threads: int = 1, progress: Callable[[str], None] | None = None,
                      process_drives: int = 4) -> dict:
    """For each variant: the one-car path on `single_drives` drives (in this process, the model
    loaded once) and on `process_drives` of them (a fresh process per drive, as the pipeline drove
    before; 0: not measured), then K cars per process for each K in `cars`; drives per core-second
    of each and the ratios to both one-car paths."""
    say = progress or (lambda _m: None)
    run = Path(run)
    if not cars or min(cars) < 1 or single_drives < 1 or process_drives < 0:
        raise BadInputError("--cars must list counts >= 1 and --single-drives must be at least 1")
    chosen = pick_variants(_rows(run), variants)
    import_torch(threads)
    snap = cpu_snapshot()
    started = time.perf_counter()
    out = []
    for row in chosen:
        art = open_artifact(row.artifact, arch=row.arch, arch_args=row.arch_args or None, contract=row.contract)
        predictor = load_artifact_predictor(art, runtime=row.runtime, threads=threads)
        entry = {"variant": row.name, "runtime": row.runtime, "framework": row.framework,
                 "brain_step_p50_ms": float(np.median(row.brain_step_samples_ms)), "per_cars": []}
        say(f"{row.name}: one car at a time, {single_drives} drives")
        base_cfgs = _configs(row, single_drives, circuit, timeout)
        # untimed: the one-time costs (kernels compiled, colour tables, the runtime's first calls)
        # would otherwise all land on the one-car path, measured first
        drive(ModelBrain(predictor, label=row.name), replace(base_cfgs[0], timeout=2.0))
        single, wall, cpu = _measured(lambda: [drive(ModelBrain(predictor, label=row.name), c) for c in base_cfgs])
        entry["one_car"] = _figures(single, wall, cpu)
        if process_drives:
            say(f"{row.name}: a fresh process per drive, {process_drives} drives")
            entry["one_car_process"] = process_per_drive(row, _configs(row, process_drives, circuit, timeout), threads)
        for k in cars:
            say(f"{row.name}: {k} cars per process")
            cfgs = _configs(row, k, circuit, timeout)
            batched, wall, cpu = _measured(lambda: drive_many([ModelBrain(predictor, label=row.name) for _ in cfgs], cfgs))
            fig = _figures(batched, wall, cpu)
            fig["cars"] = k
            base = entry["one_car"]["drives_per_core_s"]
            fig["speedup_drives_per_core_s"] = fig["drives_per_core_s"] / base if base and fig["drives_per_core_s"] else None
            per_process = entry.get("one_car_process", {}).get("drives_per_core_s")
            fig["speedup_vs_process_per_drive"] = (fig["drives_per_core_s"] / per_process
                                                   if per_process and fig["drives_per_core_s"] else None)
            fig["vs_one_car"] = _gap(single[:k], batched[:len(single)])
            fig["model_core_ms_per_frame"] = model_cost(predictor, ModelBrain(predictor, label=row.name), cfgs[0], k)
            fig["sim_core_ms_per_brain_step"] = fig["core_ms_per_brain_step"] - fig["model_core_ms_per_frame"]
            entry["per_cars"].append(fig)
        # the most batching could give if the simulation cost nothing: one car's step / the model alone
        best_model = min(p["model_core_ms_per_frame"] for p in entry["per_cars"])
        entry["speedup_bound_model_only"] = entry["one_car"]["core_ms_per_brain_step"] / best_model
        out.append(entry)
        del predictor
    share, warnings = contention(snap, 0.15, "figures")
    return {"schema": BENCH_SCHEMA, "pilotopt": __version__, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "seconds": round(time.perf_counter() - started, 1),
            "machine": {"cpu": cpu_name(), "cpu_count": os.cpu_count(), "threads": threads,
                        "other_processes_cpu_share": share},
            "versions": versions(),
            "settings": {"run": str(run), "circuit": circuit, "cars": list(cars), "single_drives": single_drives,
                         "process_drives": process_drives,
                         "timeout_s": timeout, "latency": "distribution (the variant's offline brain-step samples)",
                         "interventions": True},
            "notes": ["one_car: sim.closed_loop.drive, one drive after another, the model loaded once",
                      "one_car_process: the first process_drives of the same drives, each in a fresh interpreter "
                      "(import, model load, warm-up, drive: how a drive ran before cars shared a process); "
                      "core_s is the children's CPU time; speedup_vs_process_per_drive = per_cars / it",
                      "per_cars: sim.closed_loop.drive_many with K cars (repetitions 1..K), one batched model "
                      "call per brain step",
                      "core_s: this process's CPU time (user + system, all threads); drives_per_core_s = drives / "
                      "core_s; speedup_drives_per_core_s = per_cars / one_car",
                      "vs_one_car: the batched drives against the same drives driven alone (the first "
                      "min(K, single_drives)); a runtime's batched kernels may round floats differently",
                      "model_core_ms_per_frame: the model call alone at batch K (one car at a time for a runtime "
                      "that is not batch-invariant); sim_core_ms_per_brain_step: the rest of a brain step",
                      "speedup_bound_model_only: the one-car path's core-ms per brain step over the model alone "
                      "at its best batch: the ratio batching would reach if the simulation cost nothing"],
            "warnings": warnings, "variants": out}


def render_table(doc: dict):
    from rich.table import Table

    t = Table(title=f"closed loop: drives per core-second ({doc['machine']['cpu']}, {doc['machine']['threads']} thread)")
    for col in ("variant", "cars", "drives", "core s", "drives / core s", "x one car", "x process per drive",
                "model ms / frame", "sim ms / step", "max |dpos| m"):
        t.add_column(col, justify="left" if col == "variant" else "right")
    for v in doc["variants"]:
        one = v["one_car"]
        t.add_row(v["variant"], "one at a time", str(one["drives"]), f"{one['core_s']:.1f}",
                  f"{one['drives_per_core_s']:.3f}", "1.00", "", "", f"{one['core_ms_per_brain_step']:.2f} (all)", "")
        proc = v.get("one_car_process")
        if proc:
            base = one["drives_per_core_s"]
            t.add_row("", "process per drive", str(proc["drives"]), f"{proc['core_s']:.1f}",
                      f"{proc['drives_per_core_s']:.3f}", f"{proc['drives_per_core_s'] / base:.2f}", "1.00", "",
                      f"{proc['core_ms_per_brain_step']:.2f} (all)", "")
        for p in v["per_cars"]:
            t.add_row("", str(p["cars"]), str(p["drives"]), f"{p['core_s']:.1f}", f"{p['drives_per_core_s']:.3f}",
                      f"{p['speedup_drives_per_core_s']:.2f}",
                      "" if p.get("speedup_vs_process_per_drive") is None else f"{p['speedup_vs_process_per_drive']:.2f}",
                      f"{p['model_core_ms_per_frame']:.2f}",
                      f"{p['sim_core_ms_per_brain_step']:.2f}", f"{p['vs_one_car']['max_position_diff_m']:.2g}")
        t.add_row("", "bound", "", "", "", f"{v['speedup_bound_model_only']:.2f}", "", "", "0 (if free)", "")
    return t
