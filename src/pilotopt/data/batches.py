"""Split: one of train / val / test as samples over the shared frame cache. Batches are gathered
from the memmap on demand, mirrored where a sample is a flip, and augmented only for training."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from pilotopt.errors import BadInputError

_FROM_CONFIG = object()  # batches(augment=...) not given: use the split's configured augmenter


class Split:
    """Samples of one split. x is uint8 (B, 66, 200, 3), or (B, T, 66, 200, 3) for sequences;
    y is float32 (B, 2) normalized (v, w) of the last frame."""

    def __init__(self, name: str, images: np.ndarray, labels: np.ndarray, index: np.ndarray,
                 flipped: np.ndarray, recordings: list[Path], circuits: list[str], training: bool,
                 augment: Callable | None = None, frame_info: dict | None = None):
        self.name = name
        self._images = images
        self._labels = labels
        self._index = index  # (n,) or (n, T) cache rows
        self._flipped = flipped
        self.recordings = list(recordings)
        self.circuits = sorted(circuits)
        self.training = training
        self.augment = augment
        self._frame_info = frame_info or {}

    def __len__(self) -> int:
        return len(self._index)

    def __repr__(self) -> str:
        return (f"Split({self.name!r}, samples={len(self)}, recordings={len(self.recordings)}, "
                f"circuits={self.circuits})")

    @property
    def sequence_length(self) -> int:
        return 1 if self._index.ndim == 1 else self._index.shape[1]

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one sample's x: (66, 200, 3), or (T, 66, 200, 3) for sequences."""
        frame = tuple(self._images.shape[1:])
        return frame if self._index.ndim == 1 else (self._index.shape[1], *frame)

    @property
    def _last_rows(self) -> np.ndarray:
        return self._index if self._index.ndim == 1 else self._index[:, -1]

    @property
    def labels(self) -> np.ndarray:
        """(n, 2) float32 normalized labels of every sample, without touching the images."""
        y = self._labels[self._last_rows].copy()
        y[self._flipped, 1] = 1.0 - y[self._flipped, 1]
        return y

    @property
    def flipped(self) -> np.ndarray:
        return self._flipped.copy()

    def info(self) -> dict[str, np.ndarray]:
        """Per sample: recording path, circuit, frame index within the recording, flipped."""
        rows = self._last_rows
        return {key: values[rows] for key, values in self._frame_info.items()} | {"flipped": self.flipped}

    def batch(self, indices) -> tuple[np.ndarray, np.ndarray]:
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        n = len(self)
        if idx.size and (idx.min() < -n or idx.max() >= n):
            raise IndexError(f"sample index out of range for split '{self.name}' of {n} samples")
        rows = self._index[idx]
        x = np.asarray(self._images[rows])
        flip = self._flipped[idx]
        if flip.any():
            x[flip] = x[flip][..., ::-1, :]  # mirror left-right (width is the second-last axis)
        y = self._labels[rows if rows.ndim == 1 else rows[:, -1]].copy()
        y[flip, 1] = 1.0 - y[flip, 1]  # w -> -w; the normalization bounds are symmetric
        return x, y

    def batches(self, batch_size: int, shuffle: bool = True, seed: int | None = None,
                augment=_FROM_CONFIG) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Every sample once, in batches (the last one may be smaller). Order and augmentation are
        a function of `seed`. `augment`: a callable (x, rng) -> x, None for none, or left out for
        the configured one (DataConfig.augment, training split only)."""
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise BadInputError(f"batch_size must be a positive integer, got {batch_size!r}")
        aug = self.augment if augment is _FROM_CONFIG else augment
        if aug is not None and not self.training:
            raise BadInputError(f"augmentation is for the training split only, not '{self.name}'; "
                                "pass augment=None for evaluation")
        order_seq, aug_seq = np.random.SeedSequence(seed).spawn(2)
        order = np.random.default_rng(order_seq).permutation(len(self)) if shuffle else np.arange(len(self))
        return self._iterate(order, int(batch_size), aug, np.random.default_rng(aug_seq))

    def _iterate(self, order, batch_size, aug, rng):
        for start in range(0, len(order), batch_size):
            x, y = self.batch(order[start:start + batch_size])
            if aug is not None:
                x = aug(x, rng)
            yield x, y

    def arrays(self, max_gb: float = 4.0) -> tuple[np.ndarray, np.ndarray]:
        """All samples materialized, in order, never augmented (for small splits and evaluation)."""
        nbytes = len(self) * self.sequence_length * int(np.prod(self._images.shape[1:]))
        if nbytes > max_gb * 2**30:
            raise BadInputError(f"split '{self.name}' would take {nbytes / 2**30:.1f} GiB in memory; "
                                "iterate with split.batches(...) instead or raise max_gb")
        return self.batch(np.arange(len(self)))


@dataclass
class Splits:
    train: Split
    val: Split
    test: Split
    summary: dict
