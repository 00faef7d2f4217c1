"""How the data and training stages' cost grows with the dataset: for each size (frames), record a
dataset with the simulator (every built-in circuit, both directions, as many laps as the size
needs), then train the baseline(s) on it for a fixed number of epochs with the run's training
settings. Per stage and size: wall seconds, CPU seconds, and peak memory, the sum of the resident
sets of the stage's process and its children sampled every 0.2 s (the data stage records with
several worker processes at once). Each stage runs in a fresh child process, so one stage's memory
never hides the next's, and the numbers are what `pilotopt run` pays for that stage."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

from pilotopt import __version__
from pilotopt.bench.host import contention, cpu_name, cpu_snapshot, versions
from pilotopt.errors import BadInputError

BENCH_SCHEMA = "pilotopt.bench.scaling/1"
FRAMES = (10_000, 40_000, 80_000)
SAMPLE_S = 0.2


PROBE_LAPS = 0.1


def frames_per_lap(work: Path, workers: int) -> float:
    """Frames one lap of every circuit and direction records, measured by recording PROBE_LAPS of
    each (the recorder's own estimate assumes a constant 14 m/s and misses by a third)."""
    probe = measured(_data_stage, str(work / "probe"), PROBE_LAPS, workers)
    shutil.rmtree(work / "probe", ignore_errors=True)
    return probe["frames"] / PROBE_LAPS


# -- the stages, each run in a child process -------------------------------------------------------
def _data_stage(root: str, laps: float, workers: int) -> dict:
    from pilotopt.sim.dataset import DatasetConfig, generate_dataset  # in the stage's own process

    summary = generate_dataset(root, DatasetConfig(laps=laps), workers=workers)
    return {"frames": summary["frames_generated"],
            "disk_gb": sum(p.stat().st_size for p in Path(root).rglob("*") if p.is_file()) / 1e9}


def _train_stage(root: str, out: str, framework: str, epochs: int, threads: int, cache: str) -> dict:
    from pilotopt.train import TrainConfig, train  # the framework, in the stage's own process

    # pilotopt train's defaults (PilotNet, batch 64, flipped and oversampled curves), no early stop
    tc = TrainConfig(framework=framework, model="pilotnet", data=[Path(root)], out=Path(out), epochs=epochs,
                     patience=epochs + 1, threads=threads, cache_dir=Path(cache))
    metrics = train(tc)
    return {"model": tc.model, "epochs": epochs, "train_samples": metrics["data"]["train"]["samples"],
            "seconds_split": metrics.get("seconds")}


def _child(fn: Callable, args: tuple, queue) -> None:
    try:
        queue.put(("ok", fn(*args)))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, in one line
        queue.put(("failed", f"{type(exc).__name__}: {exc}".splitlines()[0]))


def _tree_rss(pid: int) -> int:
    import psutil

    try:
        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def measured(fn: Callable, *args) -> dict:
    """`fn(*args)` in a fresh spawned process: its result, wall and CPU seconds (the process and
    its children), and the peak of the summed resident sets of its process tree."""
    import psutil

    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(fn, args, queue))
    t0 = time.perf_counter()
    proc.start()
    peak = [0]
    cpu = [0.0]
    stop = threading.Event()

    def sample() -> None:
        try:
            p = psutil.Process(proc.pid)
        except psutil.Error:
            return
        while not stop.is_set():
            peak[0] = max(peak[0], _tree_rss(proc.pid))
            try:
                times = p.cpu_times()
                cpu[0] = max(cpu[0], times.user + times.system + times.children_user + times.children_system)
            except psutil.Error:
                pass
            stop.wait(SAMPLE_S)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    status, value = queue.get()  # before join: a large result would block the child's exit
    proc.join()
    wall = time.perf_counter() - t0
    stop.set()
    sampler.join()
    if status != "ok":
        raise BadInputError(f"{getattr(fn, '__name__', 'stage')} failed: {value}")
    return {"wall_s": round(wall, 2), "cpu_s": round(cpu[0], 2), "peak_rss_gb": round(peak[0] / 1e9, 3),
            **value}


def bench_scaling(frames: tuple[int, ...] = FRAMES, frameworks: tuple[str, ...] = ("torch",), epochs: int = 1,
                  threads: int = 2, workers: int = 2, work: Path | None = None,
                  progress: Callable[[str], None] | None = None) -> dict:
    """For each size in `frames`: the data stage, then each framework's training, measured."""
    say = progress or (lambda _m: None)
    if not frames or min(frames) < 100:
        raise BadInputError("--frames must list dataset sizes of at least 100 frames, e.g. 10000,40000,80000")
    if epochs < 1:
        raise BadInputError("--epochs must be at least 1")
    keep = work is not None
    root = Path(work) if keep else Path(tempfile.mkdtemp(prefix="pilotopt-scaling-"))
    snap = cpu_snapshot()
    started = time.perf_counter()
    rows = []
    try:
        say(f"measuring the frames of one lap ({PROBE_LAPS} laps of every circuit and direction)")
        per_lap = frames_per_lap(root, workers)
        for n in sorted(frames):
            laps = n / per_lap
            data = root / f"data_{n}"
            say(f"{n} frames: recording ({laps:.2f} laps of every circuit and direction)")
            entry = {"frames_asked": n, "laps": round(laps, 3),
                     "data": measured(_data_stage, str(data), laps, workers)}
            for fw in frameworks:
                say(f"{n} frames: training {fw} ({epochs} epoch{'s' if epochs > 1 else ''})")
                entry[f"train_{fw}"] = measured(_train_stage, str(data), str(root / f"train_{n}_{fw}"), fw, epochs,
                                                threads, str(root / f"cache_{n}"))
            rows.append(entry)
            if not keep:  # the next size is recorded from nothing; the disk holds one size at a time
                shutil.rmtree(data, ignore_errors=True)
                shutil.rmtree(root / f"cache_{n}", ignore_errors=True)
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
    share, warnings = contention(snap, 0.15, "figures")
    return {"schema": BENCH_SCHEMA, "pilotopt": __version__, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "seconds": round(time.perf_counter() - started, 1),
            "machine": {"cpu": cpu_name(), "cpu_count": os.cpu_count(), "other_processes_cpu_share": share},
            "versions": versions(),
            "settings": {"frames": list(frames), "frameworks": list(frameworks), "epochs": epochs, "threads": threads,
                         "data_workers": workers},
            "notes": ["data: the simulator records every built-in circuit in both directions (PNG frames + CSV)",
                      "train_<fw>: the quick profile's training settings (model, batch, flip, oversampling) for "
                      "`epochs` epochs, the frames preprocessed into the cache first (seconds_split: data, train)",
                      "peak_rss_gb: the largest sum of the resident sets of the stage's process tree, sampled "
                      f"every {SAMPLE_S} s; cpu_s: user + system seconds of the process and its children"],
            "warnings": warnings, "sizes": rows}


def render_table(doc: dict):
    from rich.table import Table

    fws = doc["settings"]["frameworks"]
    t = Table(title=f"cost against data size ({doc['machine']['cpu']}, {doc['settings']['epochs']} epoch(s))")
    t.add_column("frames", justify="right")
    t.add_column("data s", justify="right")
    t.add_column("data GB RAM", justify="right")
    t.add_column("disk GB", justify="right")
    for fw in fws:
        t.add_column(f"train {fw} s", justify="right")
        t.add_column(f"train {fw} GB RAM", justify="right")
    for row in doc["sizes"]:
        cells = [str(row["data"]["frames"]), f"{row['data']['wall_s']:.0f}", f"{row['data']['peak_rss_gb']:.2f}",
                 f"{row['data']['disk_gb']:.2f}"]
        for fw in fws:
            tr = row[f"train_{fw}"]
            cells += [f"{tr['wall_s']:.0f}", f"{tr['peak_rss_gb']:.2f}"]
        t.add_row(*cells)
    return t
