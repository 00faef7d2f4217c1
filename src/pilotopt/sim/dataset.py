"""Dataset generation in the DeepLearningStudio follow-line format: one folder per recording
(`montreal_clockwise_1/`) holding only frames `0.png, 1.png, ...` (640 x 480 RGB) and `data.csv`
(`image_name,v,w,timestamp`, row k labels k.png), so DeepLearningStudio's own readers load it as is:
its TensorFlow reader takes every file of the folder but data.csv as a frame with an integer name
and pairs them, sorted, with the rows in file order; its PyTorch reader does the same with `*.png`.

pilotopt's metadata for a recording (circuit, direction, seed, settings) lives beside it, in
`<root>/.pilotopt/<recording>.meta.json` (pilotopt.sim.recording), with the
dataset summary in `<root>/.pilotopt/dataset.json`: a dot-folder, which glob's `*` never returns,
so neither a reader's glob of a recording nor a glob of the root sees it.

The expert drives; with noise injection the executed command is perturbed while the clean expert
command is recorded, so the data holds recovery examples. Recordings are generated in parallel
processes, each deterministic under its seed, written to a temporary folder and renamed when
complete. The metadata is removed before a recording is (re)written and written, atomically, only
after its folder is in place, so after a crash a folder has either its own metadata or none, and a
recording without metadata is incomplete; one whose metadata matches the settings is not generated
again. A dataset written before (meta.json inside the folder) has it moved out on the next run."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import time
import zlib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from pilotopt import __version__
from pilotopt.atomic import atomic_path, ensure_writable_dir, write_json
from pilotopt.errors import BadInputError
from pilotopt.sim.appearance import appearance
from pilotopt.sim.brains.expert import ExpertBrain
from pilotopt.sim.camera import CameraModel
from pilotopt.sim.circuits import DIRECTIONS, circuit_names, load_circuit, parse_direction
from pilotopt.sim.recording import LEGACY_META, META_DIR, recording_meta_path
from pilotopt.sim.simulation import SimSettings, Simulation

DATASET_SCHEMA = "pilotopt.dataset/1"


@dataclass(frozen=True)
class NoiseConfig:
    """Perturbation episodes: they start at `rate` per second of sim time and last `duration` s,
    adding a constant offset to the executed w (and a relative one to v)."""

    rate: float = 0.25
    duration: tuple[float, float] = (0.3, 0.9)
    w_amplitude: float = 1.2  # rad/s, offsets drawn uniformly in [-a, a]
    v_relative: float = 0.15

    @property
    def enabled(self) -> bool:
        return self.rate > 0 and (self.w_amplitude > 0 or self.v_relative > 0)


@dataclass(frozen=True)
class DatasetConfig:
    circuits: tuple[str, ...] = ()  # empty: every built-in circuit
    directions: tuple[str, ...] = DIRECTIONS
    laps: float = 1.0
    seed: int = 0
    look: str = "default"
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    speed_scale: float = 1.0  # expert speed multiplier (more frames per metre when < 1)
    png_compression: int = 1  # zlib level: 1 is 5x faster than 6 for +20 % size

    def resolved(self) -> "DatasetConfig":
        circuits = tuple(self.circuits) or tuple(circuit_names())
        for c in circuits:
            load_circuit(c)  # raises a one-line error for an unknown name or a bad CSV
        directions = tuple(parse_direction(d) for d in self.directions)
        if self.laps <= 0:
            raise BadInputError(f"laps must be > 0, got {self.laps}")
        if not 0 <= self.png_compression <= 9:
            raise BadInputError(f"png compression must be 0..9, got {self.png_compression}")
        appearance(self.look)
        return DatasetConfig(circuits, directions, self.laps, self.seed, self.look, self.noise,
                             self.speed_scale, self.png_compression)


@dataclass(frozen=True)
class RecordingJob:
    circuit: str
    direction: str
    index: int
    seed: int
    config: DatasetConfig

    @property
    def folder_name(self) -> str:
        stem = Path(self.circuit).stem if self.circuit.lower().endswith(".csv") else self.circuit
        return f"{stem}_{self.direction}_{self.index}"

    def settings_hash(self) -> str:
        payload = {"circuit": self.circuit, "direction": self.direction, "seed": self.seed,
                   "config": asdict(self.config), "generator": __version__}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def recording_seed(seed: int, circuit: str, direction: str) -> int:
    """A stable per-recording seed (Python's hash() is salted per process)."""
    return zlib.crc32(f"{seed}/{circuit}/{direction}".encode())


def plan_jobs(config: DatasetConfig) -> list[RecordingJob]:
    cfg = config.resolved()
    return [RecordingJob(c, d, 1, recording_seed(cfg.seed, c, d), cfg)
            for c in cfg.circuits for d in cfg.directions]


def read_meta(path: Path) -> dict | None:
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def is_complete(folder: Path, job: RecordingJob) -> bool:
    """The folder is in place with its data.csv and its metadata was written for these settings
    (the metadata is written last, so a folder without it is a write that did not finish)."""
    if not (folder / "data.csv").is_file() or (folder / LEGACY_META).exists():
        return False
    meta = read_meta(recording_meta_path(folder))
    return meta is not None and meta.get("settings_hash") == job.settings_hash()


def migrate_legacy_meta(folder: Path) -> None:
    """Move an older dataset's `<recording>/meta.json` out of the folder (it crashes
    DeepLearningStudio's TensorFlow reader) to its place beside it: copy first, then delete, so an
    interrupted move leaves two equal copies; the in-folder one wins, as it does for the reader."""
    legacy = folder / LEGACY_META
    if not legacy.is_file():
        return
    meta = read_meta(legacy)
    if meta is not None:
        write_json(recording_meta_path(folder), meta)
        legacy.unlink()
    # unreadable: left alone; the recording counts as incomplete and is rewritten whole


def encode_png(frame: np.ndarray, level: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(frame).save(buf, format="PNG", compress_level=level)
    return buf.getvalue()


def record(job: RecordingJob, out_dir: Path, report: Callable[[int], None] | None = None) -> dict:
    """Drive one recording and write it atomically into out_dir/job.folder_name."""
    cfg = job.config
    track = load_circuit(job.circuit, job.direction)
    camera = CameraModel()
    laps = max(1, int(np.ceil(cfg.laps)))
    sim = Simulation(track, camera, cfg.look, settings=SimSettings(laps=laps, timeout=1e9),
                     seed=job.seed)
    expert = ExpertBrain(speed_scale=cfg.speed_scale)
    expert.reset(sim)
    rng = np.random.default_rng(job.seed)
    goal = cfg.laps * track.length
    noise = cfg.noise
    offset = (0.0, 0.0)
    noise_until = -1.0
    rows = []
    target = out_dir / job.folder_name
    meta_path = recording_meta_path(target)
    # first: the folder about to be replaced must not keep its predecessor's metadata
    meta_path.unlink(missing_ok=True)
    with atomic_path(target) as tmp:
        tmp.mkdir(parents=True)
        k = 0
        while not sim.done and sim.progress < goal:
            v, w = expert.step(None)
            (tmp / f"{k}.png").write_bytes(encode_png(sim.frame(), cfg.png_compression))
            rows.append((f"{k}.png", v, w, sim.time))
            if noise.enabled:
                if sim.time >= noise_until and rng.random() < noise.rate * sim.period:
                    noise_until = sim.time + rng.uniform(*noise.duration)
                    offset = (rng.uniform(-noise.v_relative, noise.v_relative),
                              rng.uniform(-noise.w_amplitude, noise.w_amplitude))
                if sim.time >= noise_until:
                    offset = (0.0, 0.0)
            sim.step(v * (1.0 + offset[0]), w + offset[1])
            k += 1
            if report is not None:
                report(1)
        with (tmp / "data.csv").open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["image_name", "v", "w", "timestamp"])
            for name, v, w, ts in rows:
                writer.writerow([name, f"{v:.6f}", f"{w:.6f}", f"{ts:.3f}"])
        meta = {
            "schema": DATASET_SCHEMA,
            "generator": f"pilotopt {__version__}",
            "recording": job.folder_name,
            "circuit": job.circuit,
            "direction": job.direction,
            "seed": job.seed,
            "dataset_seed": cfg.seed,
            "laps": cfg.laps,
            "lap_length_m": track.length,
            "frames": len(rows),
            "end": sim.termination or "distance_reached",
            "look": cfg.look,
            "noise": asdict(noise),
            "speed_scale": cfg.speed_scale,
            "camera": asdict(camera),
            "settings_hash": job.settings_hash(),
        }
    # last, and atomically: metadata present means the folder beside it is complete
    write_json(meta_path, meta)
    return meta


def _record_in_worker(job: RecordingJob, out_dir: str, queue) -> dict:
    def report(n: int) -> None:
        if queue is not None:
            queue.put(n)
    return record(job, Path(out_dir), report)


def estimate_frames(job: RecordingJob) -> int:
    track = load_circuit(job.circuit, job.direction)
    return int(job.config.laps * track.length / (14.0 * job.config.speed_scale) * CameraModel().fps)


def generate_dataset(out_dir: Path | str, config: DatasetConfig = DatasetConfig(), workers: int = 2,
                     progress: Callable[[int, int], None] | None = None) -> dict:
    """Generate every (circuit, direction) recording into out_dir; returns a summary.
    `progress(done_frames, estimated_total)` is called as frames are written."""
    out = ensure_writable_dir(out_dir)
    jobs = plan_jobs(config)
    for j in jobs:
        migrate_legacy_meta(out / j.folder_name)
    todo = [j for j in jobs if not is_complete(out / j.folder_name, j)]
    skipped = len(jobs) - len(todo)
    total = sum(estimate_frames(j) for j in todo)
    done = 0
    metas: list[dict] = []
    if todo and workers <= 1:
        def report(n: int) -> None:
            nonlocal done
            done += n
            if progress:
                progress(done, max(total, done))
        for job in todo:
            metas.append(record(job, out, report))
    elif todo:
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        with ctx.Manager() as manager:
            queue = manager.Queue()
            with ProcessPoolExecutor(max_workers=min(workers, len(todo)), mp_context=ctx) as pool:
                futures = [pool.submit(_record_in_worker, j, str(out), queue) for j in todo]
                pending = set(futures)
                while pending:
                    while not queue.empty():
                        done += queue.get()
                    if progress:
                        progress(done, max(total, done))
                    finished = [f for f in pending if f.done()]
                    for f in finished:
                        pending.discard(f)
                        metas.append(f.result())
                    if pending:
                        time.sleep(0.05)
                while not queue.empty():
                    done += queue.get()
                if progress:
                    progress(done, max(total, done))
    summary = {
        "schema": DATASET_SCHEMA,
        "recordings": [j.folder_name for j in jobs],
        "generated": len(todo),
        "skipped_existing": skipped,
        "frames_generated": int(sum(m["frames"] for m in metas)),
        "config": asdict(config.resolved()),
    }
    write_json(out / META_DIR / "dataset.json", summary)
    old_summary = out / "dataset.json"  # where datasets written before kept it
    if old_summary.is_file() and (read_meta(old_summary) or {}).get("schema") == DATASET_SCHEMA:
        old_summary.unlink()
    return summary


def file_digest(root: Path | str) -> str:
    """SHA-256 over every file's relative path and bytes (for reproducibility checks)."""
    root = Path(root)
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


