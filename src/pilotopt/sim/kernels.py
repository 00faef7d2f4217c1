"""Compiled per-pixel ground shading (numba): the renderer's hot loop, ~3x faster than the NumPy
expression of the same arithmetic because it never materializes per-pixel temporaries.

Every view goes through this one kernel, so a pixel's colour is bit-identical whichever view
renders it."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def row_scratch(cols):  # pragma: no cover (JIT)
    return (np.empty(cols, np.float32), np.empty(cols, np.float32), np.empty(cols, np.int32),
            np.empty((4, cols), np.float32), np.empty(cols, np.int32))


@njit(cache=True, nogil=True)
def shade_row(f, right, m00, m01, m10, m11, t0, t1, coef, ncx, ncy, lut, base, nbins, inv_bin,
              scratch, out):  # pragma: no cover (JIT)
    """out[j] = packed colour of the ground point at forward distance f seen by column j, in four
    passes over `scratch` (row_scratch): the arithmetic (vectorized by LLVM: float32 lanes, int32
    cell indices), the cell gathers, the bilinear value and colour bin (vectorized), the colour
    gathers. About twice as fast as one scalar pass per pixel, with the same float32 operations in
    the same order, so the same bytes."""
    ax, ay, kk, cc, bb = scratch
    cols = right.shape[0]
    xmax = np.float32(ncx - 1e-3)
    ymax = np.float32(ncy - 1e-3)
    zero = np.float32(0.0)
    last = np.float32(nbins - 1)
    ncx32 = np.int32(ncx)
    fx0 = m00 * f + t0
    fy0 = m10 * f + t1
    for j in range(cols):
        r = f * right[j]
        gx = fx0 + m01 * r
        gy = fy0 + m11 * r
        gx = min(max(gx, zero), xmax)
        gy = min(max(gy, zero), ymax)
        ix = np.int32(gx)
        iy = np.int32(gy)
        ax[j] = gx - np.float32(ix)
        ay[j] = gy - np.float32(iy)
        kk[j] = iy * ncx32 + ix
    for j in range(cols):
        k = kk[j]
        cc[0, j] = coef[k, 0]
        cc[1, j] = coef[k, 1]
        cc[2, j] = coef[k, 2]
        cc[3, j] = coef[k, 3]
    for j in range(cols):
        val = cc[0, j] + ax[j] * (cc[1, j] + ay[j] * cc[3, j]) + ay[j] * cc[2, j]
        bb[j] = np.int32(min(abs(val) * inv_bin, last))
    for j in range(cols):
        out[j] = lut[base + bb[j]]


@njit(cache=True, nogil=True)
def shade_ground(fwd, right, m, t, coef, ncx, ncy, lut, nbins, inv_bin, out):  # pragma: no cover (JIT)
    """out[i, j] = packed colour of the ground point seen by ground row i, column j.

    fwd (R,) forward distance per row; right (C,) rightward slope per column; m (2, 2) and t (2,)
    map car-frame metres (forward, right) to field-grid coordinates; coef (cells, 4) bilinear
    coefficients of the signed lateral offset; lut (R * nbins,) packed colours per row and
    |offset| bin."""
    scratch = row_scratch(right.shape[0])
    m00, m01, m10, m11 = m[0, 0], m[0, 1], m[1, 0], m[1, 1]
    for i in range(fwd.shape[0]):
        shade_row(fwd[i], right, m00, m01, m10, m11, t[0], t[1], coef, ncx, ncy, lut, i * nbins, nbins,
                  inv_bin, scratch, out[i])


@njit(cache=True, nogil=True)
def nearest_in_window(points, hint, window, px, py):  # pragma: no cover (JIT)
    """The index of the track point nearest (px, py) among hint - window .. hint + window (wrapping
    around), the first one on a tie: what NumPy's argmin over the same window gives, without the
    window's temporaries (the simulator projects the car on every physics tick)."""
    n = points.shape[0]
    best = -1
    best_d = np.inf
    for k in range(-window, window + 1):
        i = (hint + k) % n
        dx = points[i, 0] - px
        dy = points[i, 1] - py
        d = dx * dx + dy * dy
        if d < best_d:
            best_d = d
            best = i
    return best


@njit(cache=True, nogil=True)
def shade_resize(fwd, right, m, t, coef, ncx, ncy, lut, nbins, inv_bin,
                 r0, r1, wr, c0, c1, wc, out):  # pragma: no cover (JIT)
    """A brain's resized view straight from the ground: per output row, its two source rows (r0,
    r1 index ground rows of fwd; c0, c1 columns of right) shaded as shade_ground shades them, then
    resize_kernel.resize_bilinear's fixed-point arithmetic. The bytes equal shade_ground then
    resize_bilinear, without the source grid in between."""
    cols = right.shape[0]
    scratch = row_scratch(cols)
    top = np.empty(cols, np.uint32)
    bottom = np.empty(cols, np.uint32)
    m00, m01, m10, m11 = m[0, 0], m[0, 1], m[1, 0], m[1, 1]
    mask = np.uint32(255)
    w = out.shape[1]
    taps = np.empty((4, w), np.uint32)
    planes = np.empty((3, w), np.uint8)
    wc0 = np.ascontiguousarray(wc[:, 0]).astype(np.int32)
    wc1 = np.ascontiguousarray(wc[:, 1]).astype(np.int32)
    for i in range(out.shape[0]):
        shade_row(fwd[r0[i]], right, m00, m01, m10, m11, t[0], t[1], coef, ncx, ncy, lut, r0[i] * nbins,
                  nbins, inv_bin, scratch, top)
        shade_row(fwd[r1[i]], right, m00, m01, m10, m11, t[0], t[1], coef, ncx, ncy, lut, r1[i] * nbins,
                  nbins, inv_bin, scratch, bottom)
        b0, b1 = np.int32(wr[i, 0]), np.int32(wr[i, 1])
        for j in range(w):  # the taps' colours, gathered once for the three channels
            taps[0, j] = top[c0[j]]
            taps[1, j] = top[c1[j]]
            taps[2, j] = bottom[c0[j]]
            taps[3, j] = bottom[c1[j]]
        for ch in range(3):  # vectorized: int32 lanes
            sh = np.uint32(8 * ch)
            for j in range(w):
                a0, a1 = wc0[j], wc1[j]
                h0 = (np.int32((taps[0, j] >> sh) & mask) * a0 + np.int32((taps[1, j] >> sh) & mask) * a1) >> 4
                h1 = (np.int32((taps[2, j] >> sh) & mask) * a0 + np.int32((taps[3, j] >> sh) & mask) * a1) >> 4
                v = ((((h0 * b0) >> 16) + ((h1 * b1) >> 16)) + 2) >> 2
                planes[ch, j] = np.uint8(min(v, 255))
        row = out[i]
        for j in range(w):
            row[j, 0] = planes[0, j]
            row[j, 1] = planes[1, j]
            row[j, 2] = planes[2, j]


@njit(cache=True, nogil=True)
def add_noise_window(image, bank, start, std, out):  # pragma: no cover (JIT)
    """out = uint8(clip(bank[start:start + size] * std + image + 0.5, 0, 255)) in float32, element by
    element: the arithmetic of conditions.camera_noise.GaussianBank.add in one pass."""
    flat_in = image.reshape(-1)
    flat_out = out.reshape(-1)
    zero = np.float32(0.0)
    top = np.float32(255.0)
    half = np.float32(0.5)
    for k in range(flat_in.shape[0]):
        v = bank[start + k] * std
        v = v + np.float32(flat_in[k])
        v = v + half
        flat_out[k] = np.uint8(min(max(v, zero), top))
