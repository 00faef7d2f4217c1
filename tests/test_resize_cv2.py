"""pilotopt's resize is cv2.resize bit for bit (issue 32): INTER_LINEAR and INTER_NEAREST on uint8,
through the numba kernel (crop_resize / apply_resize / the simulator's brain view) and through the
NumPy-only twin pilotopt_edge.resize.resize_exact_numpy."""

import numpy as np
import pytest

from pilotopt.preprocess import Geometry, apply_resize, crop_resize, resize_plan
from pilotopt_edge.resize import (COEF_SCALE, axis_linear, resize_coefficients, resize_exact_numpy,
                             vertical_round)

cv2 = pytest.importorskip("cv2")

CV2 = {"bilinear": cv2.INTER_LINEAR, "nearest": cv2.INTER_NEAREST}
# (out_h, out_w) from the 240 x 640 road half: PilotNet's, other contracts', odd ones, upscales
SIZES = [(66, 200), (100, 50), (37, 91), (120, 160), (74, 148), (91, 37), (33, 640), (300, 700), (480, 1280)]


def _cv2(img, out_h, out_w, interpolation):
    out = cv2.resize(img, (out_w, out_h), interpolation=CV2[interpolation])
    return out.reshape(out_h, out_w, -1) if img.ndim == 3 else out


def _random(shape, seed):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


@pytest.fixture(scope="module")
def frames():
    """A few simulator camera frames (480 x 640 RGB): real edges, flat areas, texture and noise."""
    from pilotopt.sim.circuits import load_circuit
    from pilotopt.sim.render import Renderer

    track = load_circuit("simple")
    out = []
    for look, i, k in [("default", 10, 0), ("textured+shadows+noisy", 1200, 5), ("white_line+dusk", 3000, 11)]:
        x, y = track.points[i] + 0.7 * track.normals[i]
        out.append(Renderer(track, look=look, seed=3).render_frame((x, y, track.heading_at(i) + 0.05), k))
    return out


@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_random_crop_equals_cv2(size, interpolation):
    """Random 480 x 640 frames, crop rows 240:480, resize: crop_resize, apply_resize and the NumPy
    function all give cv2's bytes."""
    h, w = size
    for seed in range(3):
        frame = _random((480, 640, 3), seed)
        ref = _cv2(frame[240:480], h, w, interpolation)
        assert np.array_equal(crop_resize(frame, Geometry(240, 480, h, w, interpolation)), ref)
        assert np.array_equal(apply_resize(frame[240:480], resize_plan(240, 640, h, w, interpolation)), ref)
        assert np.array_equal(resize_exact_numpy(frame[240:480], h, w, interpolation), ref)


@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
def test_simulator_frames_equal_cv2(frames, interpolation):
    for frame in frames:
        for h, w in SIZES:
            ref = _cv2(frame[240:480], h, w, interpolation)
            assert np.array_equal(crop_resize(frame, Geometry(240, 480, h, w, interpolation)), ref), (h, w)
            assert np.array_equal(resize_exact_numpy(frame[240:480], h, w, interpolation), ref), (h, w)
        ref = _cv2(frame, 66, 200, interpolation)  # the whole frame, sky included
        assert np.array_equal(crop_resize(frame, Geometry(0, 480, 66, 200, interpolation)), ref)


@pytest.mark.parametrize("geometry", [Geometry(), Geometry(240, 480, 37, 91), Geometry(200, 480, 120, 160, "nearest"),
                                      Geometry(240, 480, 300, 700)], ids=lambda g: g.key)
def test_brain_view_equals_cv2(geometry):
    """The simulator renders only the pixels the plan reads; the view still is cv2.resize's output."""
    from pilotopt.sim.camera import PilotNetView
    from pilotopt.sim.circuits import load_circuit
    from pilotopt.sim.render import Renderer

    track = load_circuit("simple")
    r = Renderer(track, look="textured+shadows+noisy", seed=3)
    view = PilotNetView(geometry=geometry)
    i = 1200
    x, y = track.points[i] + 0.7 * track.normals[i]
    pose = (x, y, track.heading_at(i) + 0.05)
    ref = _cv2(r.render_frame(pose, 5)[geometry.crop_top:geometry.crop_bottom], geometry.height, geometry.width,
               geometry.interpolation)
    assert np.array_equal(r.render_view(view, pose, 5), ref)


def _sweep_sizes(n, seed):
    rng = np.random.default_rng(seed)
    sizes = [(1, 1, 1, 1), (1, 1, 5, 3), (2, 2, 1, 1), (3, 5, 3, 5), (480, 640, 240, 320), (240, 640, 120, 320),
             (7, 3, 2, 11), (5, 640, 66, 1)]  # single pixels, same size, exact 2x (cv2: INTER_AREA), 1-wide
    sizes += [tuple(int(v) for v in rng.integers(1, 300, 4)) for _ in range(n)]
    return sizes


@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
def test_any_size_and_ratio_equals_cv2(interpolation):
    """Down, up, odd ratios, single pixels, exact 2x (which cv2 routes to INTER_AREA), edges: the
    kernel and the NumPy function equal cv2 on 3-channel images; the NumPy one on 1 and 4 too."""
    for k, (ih, iw, oh, ow) in enumerate(_sweep_sizes(80, 1)):
        img = _random((ih, iw, 3), k)
        ref = _cv2(img, oh, ow, interpolation)
        assert np.array_equal(apply_resize(img, resize_plan(ih, iw, oh, ow, interpolation)), ref), (ih, iw, oh, ow)
        assert np.array_equal(resize_exact_numpy(img, oh, ow, interpolation), ref), (ih, iw, oh, ow)
    for k, (ih, iw, oh, ow) in enumerate(_sweep_sizes(20, 2)):
        for shape in [(ih, iw), (ih, iw, 1), (ih, iw, 4)]:
            img = _random(shape, k)
            assert np.array_equal(resize_exact_numpy(img, oh, ow, interpolation), _cv2(img, oh, ow, interpolation))


def test_kernel_reads_4_channel_images_and_positions():
    """apply_resize on an RGBA image and on the packed grid of the pixels the plan reads (what the
    simulator passes) gives cv2's bytes of the RGB image."""
    img = _random((240, 640, 4), 7)
    plan = resize_plan(240, 640, 37, 91)
    ref = _cv2(np.ascontiguousarray(img[..., :3]), 37, 91, "bilinear")
    assert np.array_equal(apply_resize(img, plan), ref)
    rows, cols = plan.rows, plan.cols
    grid = np.ascontiguousarray(img[np.ix_(rows, cols)])
    pos_r = (np.searchsorted(rows, plan.r0), np.searchsorted(rows, plan.r1))
    pos_c = (np.searchsorted(cols, plan.c0), np.searchsorted(cols, plan.c1))
    assert np.array_equal(apply_resize(grid, plan, pos_r, pos_c), ref)


def test_the_cases_tell_the_roundings_apart(frames):
    """A guard on the tests above: on their images, the plain fixed-point vertical rounding, the
    float bilinear pilotopt used before, and INTER_NEAREST's old index rule each differ from cv2,
    so losing the exact arithmetic fails them."""
    crop = frames[1][240:480]
    for h, w in [(66, 200), (100, 50), (37, 91)]:
        ref = _cv2(crop, h, w, "bilinear")
        co = resize_coefficients(240, 640, h, w)
        x = crop.astype(np.int64)
        hz = x[:, co.c0] * co.wc[None, :, :1] + x[:, co.c1] * co.wc[None, :, 1:]
        h0, h1 = hz[co.r0], hz[co.r1]
        b0, b1 = co.wr[:, :1, None], co.wr[:, 1:, None]
        assert np.array_equal(vertical_round(h0, h1, b0, b1), ref)
        plain = np.clip((h0 * b0 + h1 * b1 + (1 << 21)) >> 22, 0, 255).astype(np.uint8)
        assert not np.array_equal(plain, ref)
        # float32 bilinear, positions clamped on both axes, rounded half up (pilotopt before issue 32)
        def axis(n_in, n_out):
            src = np.clip((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0, n_in - 1)
            i0 = np.floor(src).astype(int)
            return i0, np.minimum(i0 + 1, n_in - 1), (src - i0).astype(np.float32)
        r0, r1, fr = axis(240, h)
        c0, c1, fc = axis(640, w)
        f = crop.astype(np.float32)
        rows = f[r0] + (f[r1] - f[r0]) * fr[:, None, None]
        old = (rows[:, c0] + (rows[:, c1] - rows[:, c0]) * fc[None, :, None] + 0.5).astype(np.uint8)
        assert not np.array_equal(old, ref)
    # nearest: floor(i * (n_in / n_out)) (the old rule) picks other pixels than cv2's
    # floor(i * (1 / (n_out / n_in))) for 240 -> 74 rows and 640 -> 148 columns (row 37, column 37)
    img = _random((240, 640, 3), 3)
    ref = _cv2(img, 74, 148, "nearest")
    old_r, old_c = (np.minimum(np.floor(np.arange(m) * (n / m)).astype(int), n - 1) for n, m in [(240, 74), (640, 148)])
    plan = resize_plan(240, 640, 74, 148, "nearest")
    assert np.array_equal(img[plan.r0][:, plan.c0], ref)
    assert not np.array_equal(img[old_r][:, plan.c0], ref)
    assert not np.array_equal(img[plan.r0][:, old_c], ref)


def test_edge_rules():
    """Columns clamp the position (weights 2048, 0 at both ends); rows clamp only the indices and
    keep the weights of the unclamped position (above row 0 both taps read row 0)."""
    c0, c1, wc = axis_linear(4, 8, clamp_position=True)
    assert (c0[0], wc[0].tolist()) == (0, [COEF_SCALE, 0])  # position -0.25: pixel 0
    assert (c0[-1], c1[-1], wc[-1].tolist()) == (3, 3, [COEF_SCALE, 0])  # position 3.25: pixel 3
    r0, r1, wr = axis_linear(4, 8, clamp_position=False)
    assert (r0[0], r1[0], wr[0].tolist()) == (0, 0, [512, 1536])  # position -0.25: floor -1, fraction 0.75
    assert (r0[-1], r1[-1], wr[-1].tolist()) == (3, 3, [1536, 512])  # position 3.25


def test_refusals():
    img = _random((4, 4, 3), 0)
    with pytest.raises(ValueError, match="uint8"):
        resize_exact_numpy(img.astype(np.float32), 2, 2)
    with pytest.raises(ValueError, match="C in 1, 3, 4"):  # cv2's 2x of 2-channel images takes another path
        resize_exact_numpy(_random((4, 4, 2), 0), 2, 2)
    with pytest.raises(ValueError, match="positive"):
        resize_exact_numpy(img, 0, 2)
    with pytest.raises(ValueError, match="interpolation 'cubic'"):
        resize_exact_numpy(img, 2, 2, "cubic")
