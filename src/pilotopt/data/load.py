"""load_splits: recordings on disk -> cached frames -> train / val / test splits and a summary."""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path
from typing import Callable

import numpy as np

from pilotopt.data.augment import make_augmenter
from pilotopt.data.cache import load_or_build
from pilotopt.data.config import DEFAULT_TEST_CIRCUITS, DataConfig
from pilotopt.data.formats import find_recordings
from pilotopt.data.batches import Split, Splits
from pilotopt.data.partition import assign, expand, windows
from pilotopt.data.validate import DataWarning, Problems
from pilotopt.errors import BadInputError
from pilotopt.preprocess import V_MAX, V_MIN, W_MAX, W_MIN, normalize_labels

MAX_NAMED = 3  # recordings named in a one-line warning


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
    cache = load_or_build(recordings, cfg.resolved_cache_dir, cfg.skip_bad, cfg.workers, problems, progress,
                          cfg.geometry)
    check_test_circuits(recordings, cache, cfg)
    parts, segment_start, val_note = assign(recordings, cache, cfg)
    clipped, clip_warning = out_of_bounds(cache, roots)

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
        "labels_out_of_bounds": clipped,
        "warnings": [clip_warning] if clip_warning else [],
        "cache_path": str(cache.path),
        "cache_hit": cache.hit,
        "cache_note": cache.note or None,
        "decoded_with": None if cache.hit else cache.manifest.get("decoded_with"),
        "load_seconds": round(time.perf_counter() - start, 3),
    })
    return Splits(splits["train"], splits["val"], splits["test"], summary)


def check_test_circuits(recordings, cache, cfg: DataConfig) -> None:
    """When none of the requested test circuits is in the data (typically the defaults on someone
    else's recordings), say which circuits there are and how to pick some, instead of naming only
    the first missing one."""
    found = sorted({r.circuit for r in recordings if _has_rows(cache, r)})
    if not cfg.test_circuits or set(cfg.test_circuits) & set(found):
        return
    asked = ", ".join(cfg.test_circuits) + (" (the default)" if cfg.test_circuits == DEFAULT_TEST_CIRCUITS else "")
    example = "test" if "test" in found else (found[0] if found else "<circuit>")
    raise BadInputError(f"none of the test circuits {asked} is in the data; circuits found: "
                        f"{', '.join(found) or 'none'}; pick the held-out ones with --test-circuits, e.g. "
                        f"--test-circuits {example}")


def _has_rows(cache, recording) -> bool:
    """Some of its frames survived validation (assign ignores a recording whose frames were all skipped)."""
    start, end = cache.rows_of(str(recording.path))
    return end > start


def out_of_bounds(cache, roots: list[Path]) -> tuple[int, str | None]:
    """(frames whose v or w is outside the fixed normalization bounds, one warning line or None).
    normalize_labels clips them, so a dataset in other units or of a faster car would train on
    saturated targets without a word; warn once, naming where."""
    if not len(cache):
        return 0, None
    v, w = cache.vw[:, 0], cache.vw[:, 1]
    bad_v, bad_w = (v < V_MIN) | (v > V_MAX), (w < W_MIN) | (w > W_MAX)
    bad = bad_v | bad_w
    count = int(bad.sum())
    if not count:
        return 0, None
    recs = [cache.recordings[i] for i in np.unique(cache.recording[bad])]
    names = ", ".join(_short(r, roots) for r in recs[:MAX_NAMED])
    more = f" and {len(recs) - MAX_NAMED} more" if len(recs) > MAX_NAMED else ""
    message = (f"{count} of {len(cache)} labels are outside pilotopt's normalization bounds and are clipped "
               f"({int(bad_v.sum())} with v outside [{V_MIN:g}, {V_MAX:g}] m/s, {int(bad_w.sum())} with w outside "
               f"[{W_MIN:g}, {W_MAX:g}] rad/s) in {names}{more}; pilotopt normalizes with these fixed bounds, "
               "so check the label units if this is unexpected")
    warnings.warn(message, DataWarning, stacklevel=3)
    return count, message


def _short(recording: str, roots: list[Path]) -> str:
    """A recording's path relative to its root ('Test', 'laps/monaco_1'), or in full."""
    for root in roots:
        try:
            rel = Path(recording).relative_to(root)
        except ValueError:
            continue
        return str(rel) if str(rel) != "." else root.name
    return recording
