"""Which cache rows go to train / val / test, and how the training rows are expanded.

Test is by circuit and validation by whole recording, never by frame: neighbouring frames are
near duplicates, so a frame-level split would score memorization, not driving."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pilotopt.data.cache import FrameCache
from pilotopt.data.config import DataConfig
from pilotopt.data.formats import Recording
from pilotopt.errors import BadInputError


@dataclass
class Part:
    """Rows of one split before expansion, with the recordings they come from."""

    rows: list[np.ndarray] = field(default_factory=list)
    recordings: list[Path] = field(default_factory=list)
    circuits: set[str] = field(default_factory=set)

    def add(self, rec: Recording, rows: np.ndarray) -> None:
        self.rows.append(rows)
        self.recordings.append(rec.path)
        self.circuits.add(rec.circuit)

    @property
    def all_rows(self) -> np.ndarray:
        return np.concatenate(self.rows) if self.rows else np.zeros(0, np.int64)


def assign(recordings: list[Recording], cache: FrameCache, cfg: DataConfig) -> tuple[dict[str, Part], np.ndarray, str]:
    """Parts by split name, `segment_start` (per cache row: the first row a sequence may reach back
    to) and a note on how validation was chosen."""
    with_rows = []
    segment_start = np.zeros(len(cache), np.int64)
    for rec in sorted(recordings, key=lambda r: str(r.path)):
        a, b = cache.rows_of(str(rec.path))
        if b > a:
            with_rows.append((rec, np.arange(a, b, dtype=np.int64)))
            segment_start[a:b] = a
    found = sorted({rec.circuit for rec, _ in with_rows})
    for circuit in cfg.test_circuits:
        if circuit not in found:
            raise BadInputError(f"test circuit '{circuit}' is not in the data (found: {', '.join(found)}); "
                                "generate it or pass --test-circuits")
    parts = {"train": Part(), "val": Part(), "test": Part()}
    training = []
    for rec, rows in with_rows:
        if rec.circuit in cfg.test_circuits:
            parts["test"].add(rec, rows)
        else:
            training.append((rec, rows))
    if not training:
        raise BadInputError(f"no training data: every circuit in the data ({', '.join(found)}) is a test circuit; "
                            "pass --test-circuits with fewer circuits or add recordings of other circuits")
    vf = cfg.val_fraction
    if vf > 0 and len(training) >= 2:
        n_val = min(len(training) - 1, max(1, math.floor(vf * len(training) + 0.5)))
        chosen = set(np.random.default_rng(cfg.seed).permutation(len(training))[:n_val].tolist())
        for k, (rec, rows) in enumerate(training):
            parts["val" if k in chosen else "train"].add(rec, rows)
        note = f"validation: {n_val} of {len(training)} training recordings (whole recordings, seed {cfg.seed})"
    elif vf > 0:
        rec, rows = training[0]
        n_val = min(len(rows) - 1, max(1, math.floor(vf * len(rows) + 0.5))) if len(rows) >= 2 else 0
        cut = len(rows) - n_val
        parts["train"].add(rec, rows[:cut])
        if n_val:
            parts["val"].add(rec, rows[cut:])
            segment_start[rows[cut:]] = rows[cut]  # a val sequence never reaches into training frames
        note = (f"only one training recording ({rec.path}): validation is its last {n_val} of {len(rows)} frames "
                f"({vf:.0%}) as one contiguous block")
    else:
        for rec, rows in training:
            parts["train"].add(rec, rows)
        note = "val_fraction is 0: no validation split"
    return parts, segment_start, note


def windows(rows: np.ndarray, segment_start: np.ndarray, length: int) -> np.ndarray:
    """(n,) rows -> (n, length) rows of the `length` frames ending at each, repeating the first
    frame of the segment (recording) where the window would reach before it."""
    back = np.arange(length - 1, -1, -1, dtype=np.int64)
    return np.maximum(rows[:, None] - back[None, :], segment_start[rows][:, None])


def expand(rows: np.ndarray, w: np.ndarray, flip: bool, oversample: int,
           threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Training expansion: each row, plus its mirror when `flip`; then every sample with
    |w| >= threshold repeated `oversample` times. Returns (rows, flipped)."""
    flipped = np.zeros(len(rows), bool)
    if flip:
        rows = np.concatenate([rows, rows])
        flipped = np.concatenate([flipped, np.ones(len(flipped), bool)])
    if oversample > 1:
        reps = np.where(np.abs(w[rows]) >= threshold, oversample, 1)
        rows, flipped = np.repeat(rows, reps), np.repeat(flipped, reps)
    return rows, flipped
