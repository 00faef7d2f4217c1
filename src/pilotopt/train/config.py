"""Training settings, validated before any work starts, and hashed to cache finished runs."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pilotopt.data.config import DEFAULT_TEST_CIRCUITS
from pilotopt.errors import BadInputError
from pilotopt.models import get_model_spec

FRAMEWORKS = ("torch", "tf")


@dataclass
class TrainConfig:
    framework: str = "torch"
    model: str = "pilotnet"
    data: list[Path] = field(default_factory=list)
    out: Path = Path("runs/train")
    epochs: int = 20
    batch_size: int = 64
    learning_rate: float = 1e-3
    patience: int = 5  # early stopping on validation loss
    seed: int = 0
    threads: int = 2
    test_circuits: tuple[str, ...] = DEFAULT_TEST_CIRCUITS
    val_fraction: float = 0.2
    flip: bool = True
    oversample: int = 2
    augment: str | None = None
    skip_bad: bool = False
    cache_dir: Path | None = None
    max_train_eval: int = 4096  # samples of the training split scored for metrics.json

    def validate(self) -> "TrainConfig":
        if self.framework not in FRAMEWORKS:
            raise BadInputError(f"unknown framework '{self.framework}'; use torch or tf")
        for key in ("epochs", "batch_size", "threads"):
            if getattr(self, key) < 1:
                raise BadInputError(f"{key.replace('_', ' ')} must be at least 1, got {getattr(self, key)}")
        if self.learning_rate <= 0:
            raise BadInputError(f"learning rate must be > 0, got {self.learning_rate}")
        if self.patience < 0:
            raise BadInputError(f"patience must be >= 0, got {self.patience}")
        if not self.data:
            raise BadInputError("no training data given; pass --data DIR (e.g. from `pilotopt sim dataset`)")

        get_model_spec(self.model)
        self.data = [Path(d) for d in self.data]
        self.out = Path(self.out)
        return self

    def fingerprint(self) -> str:
        """Hash of everything that changes the trained model (not the output folder)."""
        d = asdict(self)
        d.pop("out")
        d.pop("cache_dir")
        d["data"] = [str(Path(p).resolve()) for p in self.data]
        return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:16]
