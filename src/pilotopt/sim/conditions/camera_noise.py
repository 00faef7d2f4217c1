"""Noise on the camera image the brain receives, as Behavior Metrics' robustness runs add it just
before the network: Gaussian (level: standard deviation in 0-255 intensity units) and salt and
pepper (level: share of pixels set to black or white). Drawn from the drive's seeded generator."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from pilotopt.sim.conditions import CAMERA_NOISE, register_condition


def gaussian(image: np.ndarray, std: float, rng: np.random.Generator) -> np.ndarray:
    noise = rng.standard_normal(image.shape, dtype=np.float32)
    noise *= np.float32(std)
    noise += image  # in place: the same sums as image + noise, without the temporaries
    return np.clip(noise, 0, 255, out=noise).astype(image.dtype)


def salt_pepper(image: np.ndarray, share: float, rng: np.random.Generator) -> np.ndarray:
    out = image.copy()
    u = rng.random(image.shape[:2])
    out[u < share / 2] = 0
    out[u > 1 - share / 2] = 255
    return out


def _noise(kind: str):
    def apply(cond, level):
        return replace(cond, camera_noise=kind, noise_level=float(level))

    return apply


CAMERA_NOISE.update(gaussian=gaussian, salt_pepper=salt_pepper)
register_condition("gaussian", _noise("gaussian"), "Gaussian noise on the brain's camera image",
                   level="standard deviation, 0-255 intensity units", default_level=10.0)
register_condition("salt_pepper", _noise("salt_pepper"), "salt-and-pepper noise on the brain's camera image",
                   level="share of pixels set to black or white", default_level=0.02)
