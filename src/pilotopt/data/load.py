"""load_splits: recordings on disk -> cached frames -> train / val / test splits and a summary."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable

import numpy as np

from pilotopt.data.augment import make_augmenter
from pilotopt.data.cache import load_or_build
from pilotopt.data.config import DataConfig
from pilotopt.data.formats import find_recordings
from pilotopt.data.split import Split, Splits
from pilotopt.data.splits import assign, expand, windows
from pilotopt.data.validate import Problems
from pilotopt.errors import BadInputError
from pilotopt.preprocess import normalize_labels


def load_splits(cfg: DataConfig, progress: Callable[[int, int], None] | None = None) -> Splits:
    """Read, validate, cache and split the recordings under cfg.roots. `progress(done, total)` is
    called while frames are decoded (only when the cache is built)."""
    if not isinstance(cfg, DataConfig):
        raise BadInputError(f"load_splits needs a DataConfig, got {type(cfg).__name__}")
    if not cfg.roots:
        raise BadInputError("no dataset folder given; pass at least one root folder of recordings")
    start = time.perf_counter()
    problems = Problems(cfg.skip_bad)
    roots = [Path(os.path.abspath(r)) for r in cfg.roots]
    recordings = find_recordings(roots, problems)
    cache = load_or_build(recordings, cfg.resolved_cache_dir, cfg.skip_bad, cfg.workers, problems, progress)
    parts, segment_start, val_note = assign(recordings, cache, cfg)

    labels = normalize_labels(cache.vw[:, 0], cache.vw[:, 1])
    w = cache.vw[:, 1]
    circuit_of = {str(r.path): r.circuit for r in recordings}
    frame_info = {
        "recording": np.array(cache.recordings, dtype=object)[cache.recording] if len(cache) else np.zeros(0, object),
        "circuit": np.array([circuit_of[p] for p in cache.recordings], dtype=object)[cache.recording]
        if len(cache) else np.zeros(0, object),
        "frame": cache.frame,
    }
    augmenter = make_augmenter(cfg.augment, cfg.seed)
    splits, summary = {}, {}
    for name, part in parts.items():
        rows = part.all_rows
        training = name == "train"
        if training:
            rows, flipped = expand(rows, w, cfg.flip, cfg.oversample, cfg.turn_threshold)
        else:
            flipped = np.zeros(len(rows), bool)
        index = windows(rows, segment_start, cfg.sequence_length) if cfg.sequence_length > 1 else rows
        splits[name] = Split(name, cache.images, labels, index, flipped, part.recordings, sorted(part.circuits),
                             training, augmenter if training else None, frame_info)
        frames = len(part.all_rows)
        summary[name] = {
            "samples": len(rows), "frames": frames, "flipped": int(flipped.sum()),
            "oversampled_extra": int(len(rows) - frames * (2 if training and cfg.flip else 1)),
            "sharp_turn_frames": int((np.abs(w[part.all_rows]) >= cfg.turn_threshold).sum()),
            "circuits": sorted(part.circuits), "recordings": [str(p) for p in part.recordings],
        }
    summary.update({
        "roots": [str(r) for r in roots],
        "recordings_found": len(recordings),
        "frames_cached": len(cache),
        "validation": val_note,
        "test_circuits": list(cfg.test_circuits),
        "sequence_length": cfg.sequence_length,
        "augment": cfg.augment,
        "skipped": problems.as_dict(),
        "cache_path": str(cache.path),
        "cache_hit": cache.hit,
        "cache_note": cache.note or None,
        "decoded_with": None if cache.hit else cache.manifest.get("decoded_with"),
        "load_seconds": round(time.perf_counter() - start, 3),
    })
    return Splits(splits["train"], splits["val"], splits["test"], summary)
