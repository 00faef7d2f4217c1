"""PilotNet preprocessing shared by every framework, the simulator's brain view and the datasets.

One implementation (a numba kernel fed by pilotopt_edge.resize's fixed-point plans) so that training
in TensorFlow, training in PyTorch and driving in the simulator see byte-identical inputs. The
resize is cv2.resize's, bit for bit: "bilinear" gives exactly the bytes of
cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR) and "nearest" those of cv2.INTER_NEAREST
on uint8 RGB (opencv-python-headless 5.0 on x86_64; see pilotopt_edge.resize for the arithmetic and
its NumPy-only twin `resize_exact_numpy`, tested equal to both).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from pilotopt.errors import BadInputError
from pilotopt_edge.resize import INTERPOLATIONS, axis_linear, axis_nearest

FRAME_H, FRAME_W = 480, 640  # camera frame
CROP_TOP, CROP_BOTTOM = 240, 480  # the road half
INPUT_H, INPUT_W = 66, 200  # PilotNet input (H x W)

# Fixed label bounds of the real follow-line datasets; normalized to [0, 1] and clipped.
V_MIN, V_MAX = 6.5, 24.0
W_MIN, W_MAX = -7.1, 7.1


@dataclass(frozen=True)
class ResizePlan:
    """Source rows/cols and weights of a resize, so a renderer can produce exactly the pixels the
    resize reads and nothing else. Output row i reads source rows r0[i], r1[i] with weights
    wr[i, 0], wr[i, 1]; output column j reads c0[j], c1[j] with wc[j, 0], wc[j, 1]. The weights are
    OpenCV's fixed-point coefficients (int32, scaled by 2 ** 11), from pilotopt_edge.resize."""

    r0: np.ndarray
    r1: np.ndarray
    wr: np.ndarray  # (out_h, 2) int32 weights of r0, r1 (x 2048)
    c0: np.ndarray
    c1: np.ndarray
    wc: np.ndarray  # (out_w, 2) int32 weights of c0, c1 (x 2048)

    @property
    def rows(self) -> np.ndarray:
        return np.unique(np.concatenate([self.r0, self.r1]))

    @property
    def cols(self) -> np.ndarray:
        return np.unique(np.concatenate([self.c0, self.c1]))


@lru_cache(maxsize=32)
def resize_plan(in_h: int, in_w: int, out_h: int = INPUT_H, out_w: int = INPUT_W,
                interpolation: str = "bilinear") -> ResizePlan:
    """The plan of cv2.resize((in_h, in_w) -> (out_h, out_w)), "bilinear" = cv2.INTER_LINEAR,
    "nearest" = cv2.INTER_NEAREST, exact on uint8 (every size and ratio, up or down)."""
    if interpolation == "nearest":
        r0, r1, wr = axis_nearest(in_h, out_h)
        c0, c1, wc = axis_nearest(in_w, out_w)
    elif interpolation == "bilinear":
        r0, r1, wr = axis_linear(in_h, out_h, clamp_position=False)
        c0, c1, wc = axis_linear(in_w, out_w, clamp_position=True)
    else:
        raise BadInputError(f"interpolation '{interpolation}' is not one of {', '.join(INTERPOLATIONS)}")
    return ResizePlan(r0, r1, wr, c0, c1, wc)


@dataclass(frozen=True)
class Geometry:
    """Which camera pixels a model sees and at what size: crop rows [crop_top, crop_bottom) of the
    640 x 480 frame, resize to height x width. The part of an input contract that decides the
    uint8 image (cached once per geometry); value scaling and layout come after it."""

    crop_top: int = CROP_TOP
    crop_bottom: int = CROP_BOTTOM
    height: int = INPUT_H
    width: int = INPUT_W
    interpolation: str = "bilinear"

    def __post_init__(self) -> None:
        if not 0 <= self.crop_top < self.crop_bottom <= FRAME_H:
            raise BadInputError(f"crop rows {self.crop_top}:{self.crop_bottom} must lie within the "
                                f"{FRAME_H}-row camera frame, top < bottom")
        if self.height < 1 or self.width < 1:
            raise BadInputError(f"model input size {self.height} x {self.width} must be positive")
        if self.interpolation not in INTERPOLATIONS:
            raise BadInputError(f"interpolation '{self.interpolation}' is not one of {', '.join(INTERPOLATIONS)}")

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (self.height, self.width, 3)

    @property
    def key(self) -> str:
        """Short stable text naming this geometry (cache keys, file names)."""
        return f"{self.crop_top}-{self.crop_bottom}_{self.height}x{self.width}_{self.interpolation}"

    def plan(self, frame_w: int = FRAME_W) -> ResizePlan:
        return resize_plan(self.crop_bottom - self.crop_top, frame_w, self.height, self.width, self.interpolation)


PILOTNET_GEOMETRY = Geometry()


def apply_resize(img: np.ndarray, plan: ResizePlan, row_pos=None, col_pos=None) -> np.ndarray:
    """Resize `img` (H, W, 3 or 4) uint8 by `plan` into (out_h, out_w, 3) uint8: the bytes
    cv2.resize gives for the plan's interpolation on img[..., :3] (INTER_LINEAR or INTER_NEAREST).
    `row_pos`/`col_pos` map the plan's source indices to positions in `img` when `img` holds only
    the pixels the plan reads (the simulator's brain view)."""
    from pilotopt.resize_kernel import resize_bilinear  # numba: compiled on first use, not on import

    r0 = plan.r0 if row_pos is None else row_pos[0]
    r1 = plan.r1 if row_pos is None else row_pos[1]
    c0 = plan.c0 if col_pos is None else col_pos[0]
    c1 = plan.c1 if col_pos is None else col_pos[1]
    out = np.empty((len(r0), len(c0), 3), dtype=np.uint8)
    resize_bilinear(img, r0, r1, plan.wr, c0, c1, plan.wc, out)
    return out


def crop_resize(frame: np.ndarray, geometry: Geometry = PILOTNET_GEOMETRY) -> np.ndarray:
    """640 x 480 RGB camera frame -> the geometry's uint8 RGB image (default: the 66 x 200 road half):
    exactly cv2.resize(frame[crop_top:crop_bottom], (width, height), interpolation=cv2.INTER_LINEAR
    or cv2.INTER_NEAREST)."""
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise BadInputError(f"expected an RGB frame (H, W, 3), got shape {frame.shape}")
    if frame.shape[:2] != (FRAME_H, FRAME_W):
        raise BadInputError(
            f"frame is {frame.shape[1]} x {frame.shape[0]}; PilotNet preprocessing expects "
            f"{FRAME_W} x {FRAME_H} camera frames"
        )
    crop = frame[geometry.crop_top:geometry.crop_bottom]
    return apply_resize(crop, geometry.plan(crop.shape[1]))


def normalize_labels(v, w) -> np.ndarray:
    """Physical (v m/s, w rad/s) -> [0, 1] each, clipped to the dataset's fixed bounds."""
    v = np.clip((np.asarray(v, dtype=np.float64) - V_MIN) / (V_MAX - V_MIN), 0.0, 1.0)
    w = np.clip((np.asarray(w, dtype=np.float64) - W_MIN) / (W_MAX - W_MIN), 0.0, 1.0)
    return np.stack([v, w], axis=-1).astype(np.float32)


def denormalize_labels(y) -> tuple[np.ndarray, np.ndarray]:
    """Model outputs in [0, 1] -> physical (v, w), the inverse of `normalize_labels`."""
    y = np.clip(np.asarray(y, dtype=np.float64), 0.0, 1.0)
    return V_MIN + y[..., 0] * (V_MAX - V_MIN), W_MIN + y[..., 1] * (W_MAX - W_MIN)
