"""Decode + crop/resize every frame once, straight into the cache's memmap, in worker processes
(PNG decoding is the whole cost of a cold load: ~2 ms a frame)."""

from __future__ import annotations

import multiprocessing as mp
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from pilotopt.data.validate import FrameError
from pilotopt.preprocess import FRAME_H, FRAME_W, PILOTNET_GEOMETRY, Geometry, crop_resize

PARALLEL_MIN_FRAMES = 200  # below this, starting worker processes costs more than it saves
CHUNK = 128


def decode_frame(path: Path | str, geometry: Geometry = PILOTNET_GEOMETRY) -> np.ndarray:
    """One camera frame file -> the geometry's uint8 image (default 66 x 200), or FrameError naming the file."""
    path = Path(path)
    try:
        with Image.open(path) as img:
            img.load()
            size = img.size
            if size != (FRAME_W, FRAME_H):
                raise FrameError("wrong frame size", f"{path}: frame is {size[0]} x {size[1]}; frames must be "
                                 f"{FRAME_W} x {FRAME_H} camera images (re-record it or delete it and its label)")
            if img.mode not in ("RGB", "RGBA", "P", "L"):
                raise FrameError("unsupported image", f"{path}: image mode {img.mode} is not RGB; re-export it "
                                 "as an 8-bit RGB PNG")
            frame = np.asarray(img if img.mode == "RGB" else img.convert("RGB"))
    except FrameError:
        raise
    except Image.UnidentifiedImageError:
        raise FrameError("corrupt image", f"{path}: not a readable image file; re-export it or delete it and "
                         "its label") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise FrameError("corrupt image", f"{path}: cannot decode the image ({exc}); re-export it or delete "
                         "it and its label") from None
    return crop_resize(frame, geometry)


def decode_chunk(out: np.ndarray | str, indices: list[int], paths: list[str],
                 geometry: Geometry = PILOTNET_GEOMETRY) -> list[tuple[int, str, str]]:
    """Decode `paths` into rows `indices` of `out` (an array, or the path of an .npy to open in
    place from a worker); returns (index, reason, message) for each bad frame."""
    array = np.load(out, mmap_mode="r+") if isinstance(out, str) else out
    failures = []
    for i, p in zip(indices, paths):
        try:
            array[i] = decode_frame(p, geometry)
        except FrameError as exc:
            failures.append((i, exc.reason, str(exc)))
    if isinstance(out, str):
        array.flush()
        del array
    return failures


def decode_all(out_path: Path, out: np.ndarray, paths: list[str], workers: int, stop_on_error: bool,
               progress: Callable[[int, int], None] | None = None, geometry: Geometry = PILOTNET_GEOMETRY) -> tuple[list[tuple[int, str, str]], str]:
    """Fill `out` (the memmap opened from `out_path`) with every frame. Returns the bad frames and
    how it ran; with `stop_on_error` it raises FrameError for the first bad frame instead."""
    total = len(paths)
    chunks = [(list(range(s, min(s + CHUNK, total))), paths[s:s + CHUNK]) for s in range(0, total, CHUNK)]
    if workers > 1 and total >= PARALLEL_MIN_FRAMES:
        out.flush()
        try:
            return _parallel(str(out_path), chunks, workers, stop_on_error, total, progress, geometry), f"{workers} processes"
        except BrokenProcessPool:  # a worker died (e.g. out of memory): finish in this process
            note = "1 process (worker processes failed)"
    else:
        note = "1 process"
    failures: list = []
    done = 0
    for idx, chunk_paths in chunks:
        bad = decode_chunk(out, idx, chunk_paths, geometry)
        if bad and stop_on_error:
            raise FrameError(bad[0][1], bad[0][2])
        failures.extend(bad)
        done += len(idx)
        if progress:
            progress(done, total)
    return failures, note


def _parallel(out_path, chunks, workers, stop_on_error, total, progress, geometry=PILOTNET_GEOMETRY):
    failures: list = []
    done = 0
    # fork where there is one: workers start in milliseconds and never re-import the caller's
    # __main__ (spawn re-runs an unguarded training script in every worker). The workers only run
    # Pillow, NumPy and a nogil numba kernel, none of which use locks or thread pools inherited
    # from the parent (TF, torch, rich's refresh thread).
    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context(method)) as pool:
        pending = {pool.submit(decode_chunk, out_path, idx, p, geometry): len(idx) for idx, p in chunks}
        try:
            while pending:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in finished:
                    n = pending.pop(fut)
                    bad = fut.result()
                    if bad and stop_on_error:
                        bad.sort()
                        raise FrameError(bad[0][1], bad[0][2])
                    failures.extend(bad)
                    done += n
                    if progress:
                        progress(done, total)
        except BaseException:
            for fut in pending:
                fut.cancel()
            raise
    return sorted(failures)
