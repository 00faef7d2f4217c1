"""OpenCV's uint8 resize (cv2.INTER_LINEAR and cv2.INTER_NEAREST) reproduced bit for bit, NumPy only.

Depends on NumPy alone (no cv2, no numba, nothing else of pilotopt) so that it can travel into a
lean edge package. pilotopt.preprocess builds its resize plans from `axis_linear`/`axis_nearest`
here, and its compiled kernel (pilotopt.resize_kernel.resize_bilinear) does the same integer
arithmetic as `resize_exact_numpy`: one implementation of the coefficients, two of the loop, the
same bytes out (tested against each other and against cv2.resize).

The arithmetic, as OpenCV does it for 8-bit images (reimplemented from its description, verified
empirically against opencv-python-headless 5.0.0.93 on x86_64):

* Source position of output index d: ``f = float32((d + 0.5) * scale - 0.5)`` computed in double
  with ``scale = 1 / (n_out / n_in)`` (the reciprocal of OpenCV's inverse scale, as OpenCV does;
  it can differ from n_in / n_out in the last bit of the double, though for every pair of sizes
  up to 1300 the float32 positions come out the same), then ``s = floor(f)`` and ``f -= s`` in
  float32. The float32 rounding matters: positions kept in double give other weights.
* Weights are shorts scaled by 2 ** 11 (INTER_RESIZE_COEF_BITS): ``round_half_even((1 - f) *
  2048)`` and ``round_half_even(f * 2048)``, ``1 - f`` in float32. Each is rounded on its own
  (their sum was 2048 for every pair of sizes up to 700; nothing here relies on it).
* Columns are clamped: a position left of pixel 0 reads pixel 0 with weights (2048, 0), one at or
  beyond the last pixel reads the last pixel with weights (2048, 0). Rows are not: the fraction of
  an out-of-range position is kept and only the row indices are clamped, so above row 0 (upscale)
  both taps read row 0 with the weights of the unclamped position (rounded as two partial
  products, which is not always row 0's value).
* Horizontal pass, exact in int32: ``h = S[c0] * a0 + S[c1] * a1``.
* Vertical pass, as OpenCV's SIMD path for 8u computes it (it shifts the int rows right by 4,
  takes the high 16 bits of 16-bit products, then rounds by (x + 2) >> 2):
  ``((((h0 >> 4) * b0) >> 16) + (((h1 >> 4) * b1) >> 16) + 2) >> 2`` saturated to 0..255. The
  plain ``(h0 * b0 + h1 * b1 + (1 << 21)) >> 22`` differs from cv2 on ~12 % of random values; the
  installed cv2 uses the SIMD form for every element of a row, the row's tail included, whatever
  the width. (A cv2 built without SIMD, or for another architecture, may round its scalar tails
  the plain way; that build is not what this reproduces.)
* cv2's own special case, exact 2x downscale in both directions routed to INTER_AREA, gives the
  same bytes as the arithmetic above ((a + b + c + d + 2) >> 2 either way) except for 2-channel
  images, which is why those are refused.
* INTER_NEAREST: ``s = min(floor(d * (1 / (n_out / n_in))), n_in - 1)`` in double, on both axes
  (``floor(d * (n_in / n_out))`` picks another pixel now and then, e.g. 240 -> 74 rows, row 37).
  As a plan it is the linear arithmetic with weights (2048, 0) on taps (s, s), which returns the
  source pixel unchanged.

Every output size >= 1 and every input size >= 1 in both directions (downscale, upscale, odd
ratios, same size) is covered; tested against cv2.resize on random images of 1, 3 and 4 channels.
"""

from __future__ import annotations

from typing import NamedTuple, Tuple

import numpy as np

COEF_BITS = 11  # OpenCV's INTER_RESIZE_COEF_BITS
COEF_SCALE = 1 << COEF_BITS
INTERPOLATIONS = ("bilinear", "nearest")


class Coefficients(NamedTuple):
    """Taps and fixed-point weights of a separable resize: output row i reads source rows r0[i] and
    r1[i] with weights wr[i, 0] and wr[i, 1] (int32, scaled by 2048); output column j reads
    source columns c0[j], c1[j] with weights wc[j, 0], wc[j, 1]."""

    r0: np.ndarray
    r1: np.ndarray
    wr: np.ndarray
    c0: np.ndarray
    c1: np.ndarray
    wc: np.ndarray


def _check_sizes(*sizes) -> None:
    for n in sizes:
        if int(n) != n or n < 1:
            raise ValueError(f"resize sizes must be positive integers, got {sizes}")


def axis_linear(n_in: int, n_out: int, clamp_position: bool) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """cv2.INTER_LINEAR taps along one axis: (i0, i1, w) with w (n_out, 2) int32 weights of i0 and
    i1 scaled by 2048. `clamp_position` True for columns (cv2 clamps the position itself), False
    for rows (cv2 clamps only the row indices and keeps the weights)."""
    _check_sizes(n_in, n_out)
    scale = 1.0 / (float(n_out) / float(n_in))
    f = ((np.arange(n_out, dtype=np.float64) + 0.5) * scale - 0.5).astype(np.float32)
    s = np.floor(f)
    f = (f - s).astype(np.float32)
    s = s.astype(np.int64)
    if clamp_position:
        low = s < 0
        f[low], s[low] = 0, 0
        high = s >= n_in - 1
        f[high], s[high] = 0, n_in - 1
    w = np.empty((n_out, 2), np.int32)
    w[:, 0] = np.rint((np.float32(1) - f) * np.float32(COEF_SCALE))
    w[:, 1] = np.rint(f * np.float32(COEF_SCALE))
    i0 = np.clip(s, 0, n_in - 1)
    i1 = np.clip(s + 1, 0, n_in - 1)
    return i0, i1, w


def axis_nearest(n_in: int, n_out: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """cv2.INTER_NEAREST along one axis as linear taps: (i, i, weights (2048, 0))."""
    _check_sizes(n_in, n_out)
    step = 1.0 / (float(n_out) / float(n_in))
    i = np.minimum(np.floor(np.arange(n_out, dtype=np.float64) * step).astype(np.int64), n_in - 1)
    w = np.zeros((n_out, 2), np.int32)
    w[:, 0] = COEF_SCALE
    return i, i.copy(), w


def resize_coefficients(in_h: int, in_w: int, out_h: int, out_w: int,
                        interpolation: str = "bilinear") -> Coefficients:
    """The taps and weights of cv2.resize(img (in_h, in_w), (out_w, out_h)) for uint8 images."""
    if interpolation == "bilinear":
        r0, r1, wr = axis_linear(in_h, out_h, clamp_position=False)
        c0, c1, wc = axis_linear(in_w, out_w, clamp_position=True)
    elif interpolation == "nearest":
        r0, r1, wr = axis_nearest(in_h, out_h)
        c0, c1, wc = axis_nearest(in_w, out_w)
    else:
        raise ValueError(f"interpolation '{interpolation}' is not one of {', '.join(INTERPOLATIONS)}")
    return Coefficients(r0, r1, wr, c0, c1, wc)


def vertical_round(h0: np.ndarray, h1: np.ndarray, b0, b1) -> np.ndarray:
    """The vertical pass on int32 horizontal sums (cv2's 8u SIMD rounding), clipped to 0..255."""
    v = (((h0 >> 4) * b0) >> 16) + (((h1 >> 4) * b1) >> 16)
    return np.clip((v + 2) >> 2, 0, 255).astype(np.uint8)


def apply_coefficients(img: np.ndarray, co: Coefficients) -> np.ndarray:
    """Resize uint8 `img` (H, W, C) by `co` with the fixed-point arithmetic above."""
    rows, inverse = np.unique(np.concatenate([co.r0, co.r1]), return_inverse=True)
    src = img[rows].astype(np.int32)
    a0 = co.wc[:, 0][None, :, None]
    a1 = co.wc[:, 1][None, :, None]
    h = src[:, co.c0] * a0 + src[:, co.c1] * a1  # (len(rows), out_w, C) int32, exact
    n = len(co.r0)
    h0, h1 = h[inverse[:n]], h[inverse[n:]]
    return vertical_round(h0, h1, co.wr[:, 0][:, None, None], co.wr[:, 1][:, None, None])


def resize_exact_numpy(img, out_h: int, out_w: int, interpolation: str = "bilinear") -> np.ndarray:
    """cv2.resize(img, (out_w, out_h), interpolation=cv2.INTER_LINEAR or cv2.INTER_NEAREST), the
    same bytes, for uint8 images (H, W) or (H, W, C) with C in 1, 3, 4. `interpolation` is
    "bilinear" (INTER_LINEAR) or "nearest" (INTER_NEAREST). Raises ValueError on other dtypes,
    2-channel images, empty images or sizes below 1."""
    img = np.asarray(img)
    if img.dtype != np.uint8:
        raise ValueError(f"resize_exact_numpy reproduces cv2 on uint8 images only, got {img.dtype}")
    if img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] not in (1, 3, 4)):
        raise ValueError(f"expected an image (H, W) or (H, W, C) with C in 1, 3, 4, got shape {img.shape}")
    _check_sizes(img.shape[0], img.shape[1], out_h, out_w)
    co = resize_coefficients(img.shape[0], img.shape[1], int(out_h), int(out_w), interpolation)
    if interpolation == "nearest":  # weights (2048, 0) on equal taps: the linear arithmetic is the identity
        return np.ascontiguousarray(img[co.r0][:, co.c0])
    if img.ndim == 2:
        return apply_coefficients(img[:, :, None], co)[:, :, 0]
    return apply_coefficients(img, co)
