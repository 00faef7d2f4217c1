"""Noise on the camera image the brain receives, as Behavior Metrics' robustness runs add it just
before the network: Gaussian (level: standard deviation in 0-255 intensity units) and salt and
pepper (level: share of pixels set to black or white). Drawn from the drive's seeded generator."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from pilotopt.sim.conditions import CAMERA_NOISE, register_condition
from pilotopt.sim.kernels import add_noise_window


def gaussian(image: np.ndarray, std: float, rng: np.random.Generator) -> np.ndarray:
    noise = rng.standard_normal(image.shape, dtype=np.float32)
    noise *= np.float32(std)
    noise += image  # in place: the same sums as image + noise, without the temporaries
    return _to_pixels(noise, image.dtype)


def _to_pixels(values: np.ndarray, dtype) -> np.ndarray:
    """Round to the nearest intensity in 0..255 (in place): truncation would darken by half a level."""
    values += np.float32(0.5)
    return np.clip(values, 0, 255, out=values).astype(dtype)


class GaussianBank:
    """Gaussian camera noise for a whole drive from one bank drawn at its first frame: each frame
    adds a window, at an offset drawn from the drive's generator, of FRAMES frames' worth of
    N(0, 1) values. Within a frame the values are as independent and normal as fresh draws; across
    frames the windows are shifted pieces of one bank, which a driving network cannot exploit. It
    costs about a tenth of drawing ~40k normals for every frame (0.4 ms of a ~1.5 ms simulation
    step), which is what a repetition's mild sensor noise paid on every brain step."""

    FRAMES = 8

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.bank: np.ndarray | None = None

    def add(self, image: np.ndarray, std: float) -> np.ndarray:
        size = image.size
        if self.bank is None or self.bank.size < size * (self.FRAMES + 1):
            self.bank = self.rng.standard_normal(size * (self.FRAMES + 1), dtype=np.float32)
        start = int(self.rng.integers(size * self.FRAMES + 1))
        if image.dtype == np.uint8 and image.flags.c_contiguous:  # one compiled pass, the same bytes
            out = np.empty_like(image)
            add_noise_window(image, self.bank, start, np.float32(std), out)
            return out
        noise = self.bank[start:start + size].reshape(image.shape) * np.float32(std)
        noise += image
        return _to_pixels(noise, image.dtype)


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
