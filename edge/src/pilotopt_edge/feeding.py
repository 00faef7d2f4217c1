"""Camera frame -> model input -> (v, w): the one implementation, shared by pilotopt and the car.

A `Feeding` is the input contract of a deploy folder (`input_contract.json`, written by pilotopt
from the variant's record): which rows of the 640 x 480 RGB frame the model sees, the size it is
resized to (OpenCV's INTER_LINEAR or INTER_NEAREST, bit for bit, see `resize`), channel order,
layout, value scaling, and how the model's outputs map to physical commands. pilotopt's own
contracts call `encode_pixels` and `OutputMap.commands` from here, so the simulator, the offline
evaluation and the car cannot feed a model two ways.

Commands are what the output map gives, unclipped: a contract clips only when it says so
(`clip: {v: [lo, hi], w: [lo, hi]}`), and the vehicle's own physical limits apply after that.
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np

from pilotopt_edge.errors import EdgeError
from pilotopt_edge.resize import INTERPOLATIONS, resize_exact_numpy

FRAME_H, FRAME_W = 480, 640  # the camera frame every contract's crop rows refer to
LAYOUTS = ("nhwc", "nchw")
CHANNELS = ("rgb", "bgr")


def encode_pixels(images, channels: str = "rgb", layout: str = "nhwc", pixel_scale: float = 1.0,
                  mean: Sequence[float] = (0.0, 0.0, 0.0), std: Sequence[float] = (1.0, 1.0, 1.0)) -> np.ndarray:
    """uint8-valued RGB images (..., H, W, 3) -> float32 model input: channels reordered, then
    x * pixel_scale - mean) / std per channel in float32, then moved to NCHW if asked."""
    x = np.asarray(images, dtype=np.float32)
    mean = tuple(float(m) for m in mean)
    std = tuple(float(s) for s in std)
    if channels == "bgr":
        x = x[..., ::-1]
    if pixel_scale != 1.0 or any(mean) or any(s != 1.0 for s in std):
        x = (x * np.float32(pixel_scale) - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    if layout == "nchw":
        x = np.moveaxis(x, -1, -3)
    return np.ascontiguousarray(x, dtype=np.float32)


class OutputMap:
    """Model output -> physical units: v = v_scale * out[v_index] + v_offset (the same for w), then
    an optional clip the contract asks for (None: commands as the map gives them)."""

    def __init__(self, v_index: int = 0, w_index: int = 1, v_scale: float = 17.5, v_offset: float = 6.5,
                 w_scale: float = 14.2, w_offset: float = -7.1,
                 clip: Optional[dict] = None):
        self.v_index, self.w_index = int(v_index), int(w_index)
        self.v_scale, self.v_offset = float(v_scale), float(v_offset)
        self.w_scale, self.w_offset = float(w_scale), float(w_offset)
        self.clip = None if not clip else {q: (float(clip[q][0]), float(clip[q][1])) for q in ("v", "w") if q in clip}

    @classmethod
    def from_dict(cls, doc: dict, clip: Optional[dict] = None) -> "OutputMap":
        """The `outputs` entry of a contract as pilotopt writes it: {order, v: {scale, offset}, w: ...}."""
        order = [str(o).lower() for o in doc.get("order", ["v", "w"])]
        if sorted(order) != ["v", "w"]:
            raise EdgeError(f"outputs.order must be [v, w] or [w, v], got {order}; redeploy with pilotopt deploy")
        v, w = doc.get("v", {}), doc.get("w", {})
        return cls(order.index("v"), order.index("w"), v.get("scale", 17.5), v.get("offset", 6.5),
                   w.get("scale", 14.2), w.get("offset", -7.1), clip)

    def commands(self, y) -> Tuple[np.ndarray, np.ndarray]:
        """Model outputs (N, 2) -> physical (v m/s, w rad/s), float64 arrays of N."""
        y = np.asarray(y, dtype=np.float64).reshape(-1, 2)
        v = self.v_scale * y[:, self.v_index] + self.v_offset
        w = self.w_scale * y[:, self.w_index] + self.w_offset
        if self.clip:
            if "v" in self.clip:
                v = np.clip(v, *self.clip["v"])
            if "w" in self.clip:
                w = np.clip(w, *self.clip["w"])
        return v, w


class Feeding:
    """The input contract of a deploy folder as code: `image` (frame -> the uint8 view the model
    sees), `encode` (views -> float32 model input) and `outputs.commands` (model outputs -> v, w)."""

    def __init__(self, crop: Sequence[int] = (240, 480), size: Sequence[int] = (66, 200),
                 interpolation: str = "bilinear", channels: str = "rgb", layout: str = "nhwc",
                 pixel_scale: float = 1.0, mean: Sequence[float] = (0.0, 0.0, 0.0),
                 std: Sequence[float] = (1.0, 1.0, 1.0), outputs: Optional[OutputMap] = None):
        self.crop = (int(crop[0]), int(crop[1]))
        self.size = (int(size[0]), int(size[1]))
        if not 0 <= self.crop[0] < self.crop[1] <= FRAME_H:
            raise EdgeError(f"crop rows {self.crop[0]}:{self.crop[1]} must lie within the {FRAME_H}-row frame")
        if interpolation not in INTERPOLATIONS:
            raise EdgeError(f"interpolation '{interpolation}' is not one of {', '.join(INTERPOLATIONS)}")
        if channels not in CHANNELS or layout not in LAYOUTS:
            raise EdgeError(f"channels '{channels}' / layout '{layout}' not one of {CHANNELS} / {LAYOUTS}")
        self.interpolation, self.channels, self.layout = interpolation, channels, layout
        self.pixel_scale = float(pixel_scale)
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)
        self.outputs = outputs or OutputMap()

    @classmethod
    def from_dict(cls, doc: dict) -> "Feeding":
        """A contract as pilotopt's `InputContract.to_dict` writes it (input_contract.json)."""
        try:
            return cls(doc["crop"], doc["size"], doc.get("interpolation", "bilinear"), doc.get("channels", "rgb"),
                       doc.get("layout", "nhwc"), doc.get("pixel_scale", 1.0), doc.get("mean", (0, 0, 0)),
                       doc.get("std", (1, 1, 1)), OutputMap.from_dict(doc.get("outputs") or {}, doc.get("clip")))
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise EdgeError(f"input contract is malformed ({type(exc).__name__}: {exc}); "
                            "redeploy the folder with pilotopt deploy") from None

    def check_frame(self, frame) -> np.ndarray:
        frame = np.asarray(frame)
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.shape[:2] != (FRAME_H, FRAME_W):
            shape = "x".join(str(s) for s in frame.shape)
            raise EdgeError(f"frame of shape {shape}: this model is fed {FRAME_W} x {FRAME_H} RGB camera frames "
                            f"({FRAME_H}x{FRAME_W}x3 uint8); resize the camera's output or set its resolution")
        if frame.dtype != np.uint8:
            raise EdgeError(f"frame of dtype {frame.dtype}: pass the camera's uint8 RGB pixels (0..255)")
        return frame

    def image(self, frame) -> np.ndarray:
        """A 480 x 640 RGB camera frame -> the (H, W, 3) uint8 view the model sees: rows
        crop[0]:crop[1], resized as cv2.resize(crop, (W, H)) does."""
        frame = self.check_frame(frame)
        return resize_exact_numpy(frame[self.crop[0]:self.crop[1]], self.size[0], self.size[1], self.interpolation)

    def encode(self, images) -> np.ndarray:
        return encode_pixels(images, self.channels, self.layout, self.pixel_scale, self.mean, self.std)
