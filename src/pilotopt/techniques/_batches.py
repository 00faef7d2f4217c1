"""The fine-tuning batches every fine-tune draws (PyTorch and TF-MOT alike): seeded per epoch, and
photometrically augmented on the camera images before the input contract encodes them. numpy only."""

from __future__ import annotations

import numpy as np

from pilotopt.data.augment import make_augmenter
from pilotopt.techniques._settings import FineTuneSettings

_AUGMENTERS: dict = {}  # (spec, seed) -> Augmenter: built once per process (each draw is seeded per batch)


def batch_indices(ctx, settings: FineTuneSettings):
    """(epoch, sorted split indices) per batch, seeded per epoch."""
    split = ctx.train
    n = len(split) if settings.max_train_frames <= 0 else min(len(split), settings.max_train_frames)
    pool = np.sort(np.random.default_rng(ctx.seed).permutation(len(split))[:n])
    for epoch in range(settings.epochs):
        order = np.random.default_rng([ctx.seed, epoch]).permutation(pool)
        for i in range(0, len(order), settings.batch_size):
            yield epoch, np.sort(order[i: i + settings.batch_size])


def training_batch(ctx, augment: str | None, epoch: int, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) of the training split at `idx`, the camera frames first through `augment` (none |
    default), drawn from (seed, epoch, first index): the same batch gets the same draw on every run."""
    key = (augment, ctx.seed)
    if key not in _AUGMENTERS:
        _AUGMENTERS[key] = make_augmenter(augment, seed=ctx.seed)
    aug = _AUGMENTERS[key]
    if aug is None:
        return ctx.train.batch(idx)
    rng = np.random.default_rng([ctx.seed, epoch, int(idx[0]) if len(idx) else 0])
    return ctx.train.batch(idx, augment=lambda x: aug(x, rng))
