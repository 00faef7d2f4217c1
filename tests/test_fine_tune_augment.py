"""Photometric augmentation of fine-tunes and distillation: a setting of every fine-tune, validated,
seeded per batch, and on by default for distillation (the student sees the teacher in other light)."""

from __future__ import annotations

import numpy as np
import pytest

from pilotopt.errors import BadInputError
from pilotopt.techniques import get_technique
from pilotopt.techniques._settings import FineTuneSettings


class _Ctx:
    seed = 3


def test_every_fine_tune_has_the_augment_setting_and_checks_it():
    from pilotopt.techniques import techniques

    tuned = [t for t in techniques().values() if "epochs" in t.make_settings({}).__dataclass_fields__]
    assert {"torch_prune_local", "torch_qat", "torch_channel_prune", "tf_prune", "tf_qat", "tf_pcqat"} <= \
        {t.name for t in tuned}
    for t in tuned:  # every technique that fine-tunes takes the setting
        assert t.make_settings({}).augment == ("default" if t.name == "torch_distill" else "none"), t.name
    assert get_technique("torch_distill").make_settings({}).augment == "default"
    with pytest.raises(BadInputError, match="unknown augmentation 'sepia'"):
        get_technique("torch_prune_local").make_settings({"augment": "sepia"})


def test_augmented_batches_are_seeded_and_change_the_light():
    from pilotopt.techniques._torch_fit import augmented

    x = np.random.default_rng(0).integers(0, 256, (16, 66, 200, 3)).astype(np.uint8)
    on, off = FineTuneSettings(augment="default"), FineTuneSettings()
    idx = np.arange(16)
    a, b = augmented(_Ctx, on, x, 0, idx), augmented(_Ctx, on, x, 0, idx)
    assert np.array_equal(a, b) and a.dtype == np.uint8 and a.shape == x.shape  # the same draw on every run
    assert not np.array_equal(a, x)  # the light changed on some frames
    assert not np.array_equal(augmented(_Ctx, on, x, 1, idx), a)  # another epoch, another draw
    assert augmented(_Ctx, off, x, 0, idx) is x
