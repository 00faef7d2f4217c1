"""Photometric augmentation of fine-tunes and distillation: a setting of every fine-tune, validated,
seeded per batch, and on by default for distillation (the student sees the teacher in other light)."""

from __future__ import annotations

import numpy as np
import pytest

from pilotopt.errors import BadInputError
from pilotopt.techniques import get_technique
from pilotopt.techniques._settings import FineTuneSettings


class _Split:
    """A training split of 16 random frames, through pilotopt's own contract."""

    def __init__(self):
        self.x = np.random.default_rng(0).integers(0, 256, (16, 66, 200, 3)).astype(np.uint8)

    def __len__(self):
        return len(self.x)

    def batch(self, idx):
        return self.x[idx], np.zeros((len(idx), 2), np.float32)


class _Ctx:
    seed = 3

    def __init__(self):
        from pilotopt.contracts import get_contract
        from pilotopt.contracts.encoded_split import EncodedSplit

        self.train = EncodedSplit(_Split(), get_contract("dls-torch"))  # NCHW, /255: augmented before encoding


def test_every_fine_tune_has_the_augment_setting_and_checks_it():
    from pilotopt.techniques import techniques

    tuned = [t for t in techniques().values() if "epochs" in t.make_settings({}).__dataclass_fields__]
    assert {"torch_prune_local", "torch_qat", "torch_channel_prune", "tf_prune", "tf_qat", "tf_pcqat"} <= \
        {t.name for t in tuned}
    for t in tuned:  # every technique that fine-tunes takes the setting
        assert t.make_settings({}).augment == ("default" if t.name == "torch_distill" else "none"), t.name
    assert get_technique("torch_distill").make_settings({}).augment == "default"
    with pytest.raises(BadInputError, match="augment must be one of none, default, got 'sepia'"):
        get_technique("torch_prune_local").make_settings({"augment": "sepia"})


def test_augmented_batches_are_seeded_and_change_the_light():
    from pilotopt.techniques._batches import training_batch

    ctx, idx = _Ctx(), np.arange(16)
    a, _ = training_batch(ctx, "default", 0, idx)
    b, _ = training_batch(ctx, "default", 0, idx)
    plain, _ = training_batch(ctx, "none", 0, idx)
    assert a.shape == plain.shape == (16, 3, 66, 200)  # in the contract's layout, after augmenting the frames
    assert np.array_equal(a, b)  # the same draw on every run
    assert not np.array_equal(a, plain)  # the light changed on some frames
    assert not np.array_equal(training_batch(ctx, "default", 1, idx)[0], a)  # another epoch, another draw
    assert np.array_equal(plain, ctx.train.contract.encode(ctx.train.split.x))
