"""Settings shared by the techniques that fine-tune on the training split (no framework imports)."""

from __future__ import annotations

from dataclasses import dataclass

from pilotopt.errors import BadInputError


@dataclass(frozen=True)
class FineTuneSettings:
    """The fine-tuning knobs every fine-tuning technique shares, TF-MOT and PyTorch alike (subclass to
    add more; a subclass may redeclare a field to change its default)."""

    epochs: int = 2  # passes over the (possibly capped) training split
    batch_size: int = 64
    learning_rate: float = 1e-4
    max_train_frames: int = 0  # 0: the whole training split
    # photometric augmentation of the fine-tuning frames (pilotopt.data.augment: none | default), so a
    # fine-tune does not lose the robustness to light and noise its input model had
    augment: str = "none"

    def __post_init__(self):
        for key in ("epochs", "batch_size"):
            if getattr(self, key) < 1:
                raise BadInputError(f"{key} must be >= 1, got {getattr(self, key)}")
        if self.learning_rate <= 0:
            raise BadInputError(f"learning_rate must be > 0, got {self.learning_rate}")
        if self.max_train_frames < 0:
            raise BadInputError(f"max_train_frames must be >= 0, got {self.max_train_frames}")
        from pilotopt.data.augment import check_spec

        check_spec(self.augment)
