"""Training data: DeepLearningStudio and older recordings -> validated, cached, circuit-split
train / val / test samples for PilotNet-style models.

    cfg = DataConfig(roots=[Path("data")], test_circuits=("simple", "montmelo", "montreal"))
    splits = load_splits(cfg)
    for x, y in splits.train.batches(64, shuffle=True, seed=epoch): ...
"""

from pilotopt.data.augment import make_augmenter
from pilotopt.data.config import DataConfig
from pilotopt.data.load import load_splits
from pilotopt.data.batches import Split, Splits

__all__ = ["DataConfig", "Split", "Splits", "load_splits", "make_augmenter"]
