"""Preprocessed frame cache: every frame decoded and cropped/resized once, kept as a uint8 memmap
so epochs read 40 KB a sample instead of decoding a PNG.

Keyed by the input files (paths, sizes, mtimes), the preprocessing version and skip_bad; built in
a temporary folder and renamed when complete; opened only after its marker, shapes and file sizes
check out, so a half-written or truncated cache is rebuilt, never trusted."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from pilotopt.atomic import atomic_path, ensure_writable_dir
from pilotopt.data.decode import decode_all
from pilotopt.data.formats import Recording
from pilotopt.data.validate import FrameError, Problems
from pilotopt.preprocess import PILOTNET_GEOMETRY, Geometry

CACHE_VERSION = 2  # bump when decoding, preprocessing or the layout below changes (2: cv2-exact resize)
IMAGE_SHAPE = PILOTNET_GEOMETRY.image_shape  # the default geometry's; each cache records its own
MANIFEST = "manifest.json"  # written last: its presence with complete=true is the marker
_BUILDING = threading.Lock()  # one open-or-build at a time in a process (frameworks build side by side)
ARRAYS = {"vw": (np.float64, 2), "recording": (np.int32, 1), "frame": (np.int32, 1)}


@dataclass
class FrameCache:
    """Rows grouped by recording (recordings sorted by path), frames in order within each."""

    path: Path
    images: np.ndarray  # (N, H, W, 3) uint8 memmap of the cache's geometry
    vw: np.ndarray  # (N, 2) float64 physical v, w
    recording: np.ndarray  # (N,) int32: index into `recordings`
    frame: np.ndarray  # (N,) int32: the frame's position in its recording
    recordings: list[str]
    manifest: dict
    hit: bool
    note: str = ""

    def __len__(self) -> int:
        return len(self.vw)

    def rows_of(self, recording_path: str) -> tuple[int, int]:
        """[start, end) cache rows of one recording (empty when all its frames were skipped)."""
        try:
            r = self.recordings.index(recording_path)
        except ValueError:
            return 0, 0
        return (int(np.searchsorted(self.recording, r, "left")), int(np.searchsorted(self.recording, r, "right")))


def cache_key(recordings: list[Recording], skip_bad: bool, geometry: Geometry = PILOTNET_GEOMETRY) -> str:
    files = sorted(f for rec in recordings for f in rec.files)
    doc = {"version": CACHE_VERSION, "skip_bad": bool(skip_bad), "shape": list(geometry.image_shape)}
    if geometry != PILOTNET_GEOMETRY:  # the default keeps the keys caches were built under
        doc["geometry"] = geometry.key
    h = hashlib.sha256(json.dumps(doc).encode())
    for path, size, mtime in files:
        h.update(f"{path}\0{size}\0{mtime}\n".encode())
    return h.hexdigest()[:32]


def load_or_build(recordings: list[Recording], cache_dir: Path, skip_bad: bool, workers: int,
                  problems: Problems, progress: Callable[[int, int], None] | None = None,
                  geometry: Geometry = PILOTNET_GEOMETRY) -> FrameCache:
    """The cache for these recordings: opened when valid, otherwise (re)built."""
    recordings = sorted(recordings, key=lambda r: str(r.path))
    key = cache_key(recordings, skip_bad, geometry)
    target = ensure_writable_dir(Path(cache_dir) / "data") / key
    names = [str(r.path) for r in recordings]
    shape = geometry.image_shape
    with _BUILDING:  # a second thread waits and opens what the first built, never rebuilds under it
        cache, why = open_cache(target, key, names, shape)
        if cache is None:
            _build(target, key, recordings, skip_bad, workers, problems, progress, geometry)
            cache, why_new = open_cache(target, key, names, shape)
            if cache is None:
                raise FrameError("cache", f"cache {target} failed its check right after it was written "
                                 f"({why_new}); check the disk or choose another cache folder")
            cache.hit = False
            cache.note = "" if why == "absent" else f"rebuilt: {why}"
    problems.merge(cache.manifest.get("skipped", {}))
    return cache


def open_cache(target: Path, key: str, recordings: list[str],
               image_shape: tuple = IMAGE_SHAPE) -> tuple[FrameCache | None, str]:
    """(cache, "") when complete and consistent, else (None, why)."""
    manifest_path = target / MANIFEST
    if not manifest_path.is_file():
        return None, "absent" if not target.exists() else "no completion marker"
    try:
        manifest = json.loads(manifest_path.read_text())
        n = int(manifest["n"])
        ok = (manifest.get("complete") is True and manifest.get("version") == CACHE_VERSION
              and manifest.get("key") == key and manifest.get("recordings") == recordings)
    except (OSError, ValueError, KeyError, TypeError):
        return None, "unreadable manifest"
    if not ok:
        return None, "manifest does not match the inputs"
    try:
        images = np.load(target / "images.npy", mmap_mode="r")
    except (OSError, ValueError, EOFError) as exc:
        return None, f"images.npy unreadable ({exc})"
    if images.shape != (n, *image_shape) or images.dtype != np.uint8:
        return None, f"images.npy has shape {images.shape}, expected {(n, *image_shape)}"
    if n and os.path.getsize(target / "images.npy") != images.offset + images.nbytes:
        return None, "images.npy has the wrong size"
    arrays = {}
    for name, (dtype, width) in ARRAYS.items():
        try:
            arr = np.load(target / f"{name}.npy", allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            return None, f"{name}.npy unreadable ({exc})"
        expected = (n, width) if width > 1 else (n,)
        if arr.shape != expected or arr.dtype != dtype:
            return None, f"{name}.npy has shape {arr.shape}, expected {expected}"
        if _digest(arr) != manifest.get("digests", {}).get(name):
            return None, f"{name}.npy does not match its checksum"
        arrays[name] = arr
    rec = arrays["recording"]
    if n and (rec.min() < 0 or rec.max() >= len(recordings) or np.any(np.diff(rec) < 0)):
        return None, "recording index out of order"
    return FrameCache(target, images, arrays["vw"], rec, arrays["frame"], recordings, manifest, hit=True), ""


def _digest(arr: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest()[:16]


def _build(target: Path, key: str, recordings: list[Recording], skip_bad: bool, workers: int,
           problems: Problems, progress, geometry: Geometry = PILOTNET_GEOMETRY) -> None:
    shape = geometry.image_shape
    start = time.perf_counter()
    paths = [str(p) for rec in recordings for p in rec.frames]
    vw = np.concatenate([rec.vw for rec in recordings]) if recordings else np.zeros((0, 2))
    rec_idx = np.concatenate([np.full(len(r), i, np.int32) for i, r in enumerate(recordings)])
    frame_idx = np.concatenate([np.arange(len(r), dtype=np.int32) for r in recordings])
    n = len(paths)
    with atomic_path(target) as tmp:
        tmp.mkdir(parents=True)
        images_path = tmp / "images.npy"
        images = np.lib.format.open_memmap(images_path, mode="w+", dtype=np.uint8, shape=(n, *shape))
        try:
            failures, how = decode_all(images_path, images, paths, workers, not skip_bad, progress, geometry)
        except FrameError as exc:
            problems.frame(exc.reason, str(exc))  # skip_bad is off: raises with the hint
            raise
        decode_problems = Problems(skip_bad=True)
        for _, reason, message in failures:
            decode_problems.frame(reason, message)
        keep = np.ones(n, bool)
        keep[[i for i, _, _ in failures]] = False
        if not keep.any():
            raise FrameError("no usable frames", f"none of the {n} frames could be used "
                             f"({dict(decode_problems.reasons)}, e.g. {decode_problems.examples[0]})")
        if failures:
            images = _compact(images, images_path, keep)
            for r, rec in enumerate(recordings):
                if len(rec) and not keep[rec_idx == r].any():
                    decode_problems.recording("no usable frames", f"{rec.path}: all {len(rec)} frames are bad")
        images.flush()
        del images
        arrays = {"vw": vw[keep].astype(np.float64), "recording": rec_idx[keep], "frame": frame_idx[keep]}
        for name, arr in arrays.items():
            np.save(tmp / f"{name}.npy", arr, allow_pickle=False)
        manifest = {
            "complete": True, "version": CACHE_VERSION, "key": key, "n": int(keep.sum()),
            "image_shape": list(shape), "geometry": geometry.key, "recordings": [str(r.path) for r in recordings],
            "circuits": [r.circuit for r in recordings], "skipped": decode_problems.as_dict(),
            "digests": {name: _digest(arr) for name, arr in arrays.items()},
            "decoded_with": how, "build_seconds": round(time.perf_counter() - start, 3),
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")


def _compact(images: np.ndarray, path: Path, keep: np.ndarray) -> np.ndarray:
    """Drop the rows of bad frames so the file holds exactly the kept frames."""
    kept_path = path.with_name("images.kept.npy")
    out = np.lib.format.open_memmap(kept_path, mode="w+", dtype=np.uint8, shape=(int(keep.sum()), *images.shape[1:]))
    rows = np.flatnonzero(keep)
    for s in range(0, len(rows), 1024):
        out[s:s + 1024] = images[rows[s:s + 1024]]
    out.flush()
    del images
    os.replace(kept_path, path)
    return out
