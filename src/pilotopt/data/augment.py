"""Training-time photometric and weather augmentation (albumentations), by name, so a run's config
says exactly what was applied. Geometry is left alone: the label (v, w) depends on where the line
is in the image; the left-right flip is done, with its label, by the training split itself."""

from __future__ import annotations

import os
import random

import numpy as np

from pilotopt.errors import BadInputError

SPECS = ("none", "default")


def check_spec(spec) -> str | None:
    """The normalized spec name (None for no augmentation), or a one-line error."""
    if spec is None:
        return None
    name = spec.strip().lower() if isinstance(spec, str) else None
    if name not in SPECS:
        raise BadInputError(f"unknown augmentation {spec!r}; choose one of: {', '.join(SPECS)}")
    return None if name == "none" else name


def _default_pipeline():
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # no network check on import
    import albumentations as A

    return A.Compose([
        A.RandomBrightnessContrast(brightness_limit=0.25, contrast_limit=0.25, p=0.5),
        # small hue shifts only: the red centre line must stay red-ish
        A.HueSaturationValue(hue_shift_limit=8, sat_shift_limit=25, val_shift_limit=15, p=0.4),
        A.RandomGamma(gamma_limit=(80, 120), p=0.3),
        A.OneOf([A.Blur(blur_limit=(3, 3)), A.MotionBlur(blur_limit=(3, 5))], p=0.2),
        A.OneOf([
            A.RandomShadow(shadow_roi=(0.0, 0.0, 1.0, 1.0), num_shadows_limit=(1, 2), shadow_dimension=4),
            A.RandomFog(fog_coef_range=(0.1, 0.3), alpha_coef=0.08),
            A.RandomRain(slant_range=(-5, 5), drop_length=6, drop_width=1, blur_value=1,
                         brightness_coefficient=0.9),
        ], p=0.1),
    ])


class Augmenter:
    """Callable (x_uint8_batch, rng) -> augmented batch of the same shape and dtype.

    Each batch draws one generator from (seed, rng), so the output is a pure function of the
    seed and the caller's rng state. A (B, T, H, W, 3) batch gets the same draw for every frame
    of a sequence."""

    def __init__(self, name: str, pipeline, seed: int):
        self.name = name
        self.pipeline = pipeline
        self.seed = int(seed)
        self._own_rng = np.random.default_rng(self.seed)

    def __repr__(self) -> str:
        return f"Augmenter({self.name!r}, seed={self.seed})"

    def __call__(self, x: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        x = np.asarray(x)
        if x.dtype != np.uint8 or x.ndim not in (4, 5) or x.shape[-1] != 3:
            raise BadInputError(f"augmenter expects a uint8 batch (B, H, W, 3) or (B, T, H, W, 3), got "
                                f"{x.dtype} {x.shape}")
        draw = int((rng if rng is not None else self._own_rng).integers(0, 2**63 - 1))
        gen = np.random.default_rng([self.seed, draw])
        self.pipeline.set_random_state(gen, random.Random(int(gen.integers(0, 2**63 - 1))))
        out = np.empty_like(x)
        for i in range(len(x)):
            if x.ndim == 4:
                out[i] = self.pipeline(image=np.ascontiguousarray(x[i]))["image"]
            else:
                out[i] = self.pipeline(images=np.ascontiguousarray(x[i]))["images"]
        return out


def make_augmenter(spec, seed: int = 0) -> Augmenter | None:
    """None/"none" -> None; "default" -> photometric + blur + rare weather; otherwise a one-line error."""
    name = check_spec(spec)
    if name is None:
        return None
    return Augmenter(name, _default_pipeline(), seed)
