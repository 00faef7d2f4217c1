"""The compiled resize behind pilotopt.preprocess (numba): cv2.resize's arithmetic on the fixed-point
plans of pilotopt_edge.resize, bit for bit. Its own module so that importing preprocess does not
import numba; preprocess imports it when a frame is first resized."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def resize_bilinear(img, r0, r1, wr, c0, c1, wc, out):  # pragma: no cover (JIT)
    """cv2.resize INTER_LINEAR / INTER_NEAREST of uint8 img (H, W, >=3) into out (h, w, 3), bit for
    bit, by the taps and fixed-point weights of pilotopt_edge.resize (wr (h, 2), wc (w, 2) int32, scaled
    by 2048): per channel the exact int32 horizontal sums of the two source rows, then OpenCV's
    8u vertical rounding ((((h0 >> 4) * b0) >> 16) + (((h1 >> 4) * b1) >> 16) + 2) >> 2, saturated.
    The same arithmetic as pilotopt_edge.resize.resize_exact_numpy. Used for every PilotNet input, so
    training data and the simulator's brain view go through the same arithmetic."""
    for i in range(out.shape[0]):
        top, bottom, row = img[r0[i]], img[r1[i]], out[i]
        b0, b1 = np.int32(wr[i, 0]), np.int32(wr[i, 1])
        for j in range(out.shape[1]):
            p, q = c0[j], c1[j]
            a0, a1 = np.int32(wc[j, 0]), np.int32(wc[j, 1])
            for ch in range(3):
                h0 = (np.int32(top[p, ch]) * a0 + np.int32(top[q, ch]) * a1) >> 4
                h1 = (np.int32(bottom[p, ch]) * a0 + np.int32(bottom[q, ch]) * a1) >> 4
                v = ((((h0 * b0) >> 16) + ((h1 * b1) >> 16)) + 2) >> 2  # >= 0: weights are never negative
                row[j, ch] = np.uint8(min(v, 255))
