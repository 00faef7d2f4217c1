"""Trajectory plots (PNG) and drive videos (GIF, MP4) from a short real closed-loop drive."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import numpy as np
import pytest
from matplotlib import colormaps
from matplotlib.colors import to_rgb
from PIL import Image

from pilotopt.errors import BadInputError
from pilotopt.sim.brains import make_brain
from pilotopt.sim.closed_loop import DriveConfig, drive
from pilotopt.sim.plots import plot_trajectories, plot_trajectory, trajectory_title
from pilotopt.sim.video import write_video

VIDEO_EVERY = 10
TIMEOUT = 8.0  # s of sim time at 20 Hz: 160 ticks, 16 recorded frames


@pytest.fixture(scope="module")
def result():
    r = drive(make_brain("expert"), DriveConfig(circuit="simple", video_every=VIDEO_EVERY, timeout=TIMEOUT))
    assert len(r.frames) == 16  # ticks 0, 10, ..., 150
    assert len(r.trajectory["x"]) > 100
    return r


# ----------------------------------------------------------------------------- image helpers
def _rgb(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        assert im.format == "PNG"
        return np.asarray(im.convert("RGB"))


def _near(img: np.ndarray, colours: np.ndarray, tol: float) -> np.ndarray:
    """Boolean mask of pixels within `tol` (RGB 0..255 distance) of any of `colours` (k x 3)."""
    packed = (img[..., 0].astype(np.int64) << 16) | (img[..., 1].astype(np.int64) << 8) | img[..., 2]
    uniq, inverse = np.unique(packed.ravel(), return_inverse=True)
    u = np.stack([(uniq >> 16) & 255, (uniq >> 8) & 255, uniq & 255], axis=1).astype(np.float64)
    d = np.sqrt(((u[:, None, :] - colours[None, :, :]) ** 2).sum(axis=2)).min(axis=1)
    return (d <= tol)[inverse].reshape(img.shape[:2])


def _colormap_lut(name: str) -> np.ndarray:
    return colormaps[name](np.linspace(0.0, 1.0, 256))[:, :3] * 255.0


def _without_colorbar(mask: np.ndarray) -> np.ndarray:
    """Drop the columns of a tall vertical strip (the colorbar) from a colormap-pixel mask."""
    tall = mask.sum(axis=0) > 0.4 * mask.shape[0]
    keep = mask.copy()
    cols = np.flatnonzero(tall)
    for c in cols:
        keep[:, max(0, c - 3): c + 4] = False
    return keep


def _no_temp_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") or ".tmp" in p.name)


# ----------------------------------------------------------------------------- plots
def test_plot_trajectory_png_shows_road_and_coloured_path(result, tmp_path):
    out = plot_trajectory(result, tmp_path / "run.png")
    assert out == tmp_path / "run.png" and out.is_file()
    assert 10_000 < out.stat().st_size < 1_000_000
    img = _rgb(out)
    h, w = img.shape[:2]
    assert 500 <= w <= 2000 and 400 <= h <= 2000

    # not blank: many distinct colours, a large grey road band, a red centre line
    assert len(np.unique(img.reshape(-1, 3), axis=0)) > 50
    road = _near(img, np.array([to_rgb("#b8b8b8")]) * 255, 6)
    assert road.mean() > 0.05
    red = _near(img, np.array([to_rgb("#d62728")]) * 255, 30)
    assert red.sum() > 300

    # the driven path in the deviation colormap, outside the colorbar, over a long stretch
    lut = _colormap_lut("plasma")
    cmap_px = _near(img, lut, 6)
    tall = cmap_px.sum(axis=0) > 0.4 * h
    assert tall.any(), "no colorbar found"
    path_px = _without_colorbar(cmap_px)
    assert path_px.sum() > 300, "driven path not drawn in the colormap"
    ys, xs = np.nonzero(path_px)
    assert xs.max() - xs.min() > 0.3 * w  # spans a good part of the plot (the run covers 36 %)


def test_plot_trajectory_path_colour_follows_deviation(result, tmp_path):
    # same run, but drawn as if 2 m off the line half-way through: far brighter colormap colours appear
    far = dict(result.trajectory)
    lat = np.array(far["lateral"], dtype=np.float64)
    lat[len(lat) // 2:] = 2.0
    far["lateral"] = lat
    shifted = dataclasses.replace(result, trajectory=far)
    lut = _colormap_lut("plasma")
    top = lut[200:]  # upper colour range (yellow/orange)

    near_img = _rgb(plot_trajectory(result, tmp_path / "near.png"))
    far_img = _rgb(plot_trajectory(shifted, tmp_path / "far.png"))
    near_top = _without_colorbar(_near(near_img, lut, 6)) & _near(near_img, top, 6)
    far_top = _without_colorbar(_near(far_img, lut, 6)) & _near(far_img, top, 6)
    # the expert stays within centimetres: the top of the map is only its few worst ticks
    assert far_top.sum() > 300
    assert far_top.sum() > 4 * near_top.sum()


def test_a_drive_drawn_over_its_circuits_background_equals_a_full_draw(result, tmp_path, monkeypatch):
    """Drives drawn one after the other over the circuit's cached background (no part of one left
    in the next) give the pixels a full draw gives; a path that leaves the circuit's box is drawn
    in full, with the box widened to show it."""
    import pilotopt.sim.plots as plots

    half = {k: np.asarray(v)[: len(v) // 2] for k, v in result.trajectory.items()}
    drives = [result, dataclasses.replace(result, trajectory=half), result]
    fast = [_rgb(plot_trajectory(r, tmp_path / f"fast{i}.png")) for i, r in enumerate(drives)]
    assert plots._CIRCUITS  # the background was drawn once and kept
    monkeypatch.setattr(plots, "_inside", lambda xy, track: False)
    full = [_rgb(plot_trajectory(r, tmp_path / f"full{i}.png")) for i, r in enumerate(drives)]
    for a, b in zip(fast, full):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(fast[0], fast[1])
    monkeypatch.undo()
    away = dict(result.trajectory)
    away["x"] = np.asarray(away["x"], dtype=np.float64) + 500.0  # far off the circuit's box
    assert not plots._inside(np.stack([away["x"], np.asarray(away["y"])], axis=1), result.track)
    assert _rgb(plot_trajectory(dataclasses.replace(result, trajectory=away), tmp_path / "away.png")).shape == fast[0].shape


def test_trajectory_title_names_run_and_metrics(result):
    title = trajectory_title(result)
    m = result.metrics.to_json()
    for part in ("simple", "anticlockwise", "lockstep", "expert", m["termination"],
                 f"{m['percentage_completed']:.1f}%", f"{m['position_deviation_mae']:.3f} m",
                 f"{m['average_speed']:.2f} m/s"):
        assert part in title


def test_plot_does_not_touch_pyplot_state(result, tmp_path):
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    plot_trajectory(result, tmp_path / "a.png")
    plot_trajectories([result], tmp_path / "b.png")
    assert plt.get_fignums() == before


def test_plot_trajectories_overlays_runs_in_distinct_colours(result, tmp_path):
    traj = dict(result.trajectory)
    n = len(traj["x"])
    # a second "variant": same start, then drifts 2.5 m to the left of the first one
    off = np.linspace(0.0, 2.5, n)
    theta = np.asarray(traj["theta"])
    traj["x"] = np.asarray(traj["x"]) - off * np.sin(theta)
    traj["y"] = np.asarray(traj["y"]) + off * np.cos(theta)
    other = dataclasses.replace(result, trajectory=traj,
                                config=dataclasses.replace(result.config, mode="realtime"))
    out = plot_trajectories([result, other], tmp_path / "cmp.png")
    img = _rgb(out)
    tab = colormaps["tab10"]
    first = _near(img, np.array([tab(0)[:3]]) * 255, 25)
    second = _near(img, np.array([tab(1)[:3]]) * 255, 25)
    assert first.sum() > 300 and second.sum() > 300  # more than the legend's short line samples
    assert len(np.unique(img.reshape(-1, 3), axis=0)) > 50


def test_plot_trajectories_rejects_bad_input(result, tmp_path):
    with pytest.raises(BadInputError):
        plot_trajectories([], tmp_path / "none.png")
    other_track = copy.copy(result.track)
    other_track.name = "elsewhere"
    with pytest.raises(BadInputError, match="different circuits"):
        plot_trajectories([result, dataclasses.replace(result, track=other_track)], tmp_path / "x.png")
    assert not (tmp_path / "none.png").exists() and not (tmp_path / "x.png").exists()


def test_plot_write_is_atomic(result, tmp_path, monkeypatch):
    target = tmp_path / "run.png"
    target.write_bytes(b"old plot")

    def broken_save(self, fname, *args, **kwargs):
        Path(fname).write_bytes(b"half a png")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", broken_save)  # the PNG writer of every plot
    with pytest.raises(OSError):
        plot_trajectory(result, target)
    assert target.read_bytes() == b"old plot"  # the old file is untouched, never half-written
    assert _no_temp_files(tmp_path) == []


# ----------------------------------------------------------------------------- videos
def test_gif_has_every_frame(result, tmp_path):
    out = write_video(result.frames, tmp_path / "drive.gif", fps=20.0)
    assert out == tmp_path / "drive.gif" and out.is_file()
    with Image.open(out) as im:
        assert im.format == "GIF"
        assert im.n_frames == len(result.frames)
        assert im.size == (320, 240)  # default GIF scale 0.5
        assert im.info.get("duration") == 50  # 20 fps
        im.seek(0)
        first = np.asarray(im.convert("RGB"), dtype=np.float64)
    src = np.asarray(Image.fromarray(result.frames[0]).resize((320, 240)), dtype=np.float64)
    assert np.abs(first - src).mean() < 12  # the frames' content, not a blank
    assert _no_temp_files(tmp_path) == []


def test_gif_scale_option(result, tmp_path):
    out = write_video(result.frames[:3], tmp_path / "small.gif", scale=0.25)
    with Image.open(out) as im:
        assert im.size == (160, 120) and im.n_frames == 3


def test_mp4_reads_back(result, tmp_path):
    import imageio_ffmpeg

    out = write_video(result.frames, tmp_path / "drive.mp4", fps=20.0)
    assert out.is_file() and out.stat().st_size > 1000
    gen = imageio_ffmpeg.read_frames(str(out))
    try:
        meta = next(gen)
        frames = [np.frombuffer(b, dtype=np.uint8).reshape(meta["size"][1], meta["size"][0], 3) for b in gen]
    finally:
        gen.close()
    assert meta["size"] == (640, 480)
    assert meta["codec"] == "h264" and meta["pix_fmt"].startswith("yuv420p")
    assert abs(meta["fps"] - 20.0) < 0.01
    assert abs(len(frames) - len(result.frames)) <= 1
    err = np.abs(frames[0].astype(np.float64) - result.frames[0].astype(np.float64)).mean()
    assert err < 8  # lossy, but the same picture
    assert _no_temp_files(tmp_path) == []


def test_mp4_odd_size_is_made_even(tmp_path):
    import imageio_ffmpeg

    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (75, 101, 3), dtype=np.uint8) for _ in range(4)]
    out = write_video(frames, tmp_path / "odd.mp4")
    n, _ = imageio_ffmpeg.count_frames_and_secs(str(out))
    assert abs(n - 4) <= 1
    gen = imageio_ffmpeg.read_frames(str(out))
    try:
        assert next(gen)["size"] == (100, 74)
    finally:
        gen.close()


def test_video_bad_extension(result, tmp_path):
    with pytest.raises(BadInputError, match=r"unsupported video format '\.xyz'; use \.mp4 or \.gif"):
        write_video(result.frames, tmp_path / "drive.xyz")
    assert list(tmp_path.iterdir()) == []


def test_video_no_frames(tmp_path):
    with pytest.raises(BadInputError) as info:
        write_video([], tmp_path / "drive.gif")
    msg = str(info.value)
    assert "\n" not in msg and "frames" in msg
    assert list(tmp_path.iterdir()) == []


def test_video_rejects_mixed_frame_sizes(tmp_path):
    frames = [np.zeros((48, 64, 3), np.uint8), np.zeros((40, 64, 3), np.uint8)]
    with pytest.raises(BadInputError, match="same size"):
        write_video(frames, tmp_path / "drive.mp4")
    assert list(tmp_path.iterdir()) == []


def test_video_write_is_atomic(result, tmp_path, monkeypatch):
    target = tmp_path / "drive.gif"
    target.write_bytes(b"old video")

    def broken_save(self, fp, *args, **kwargs):
        (fp.write(b"GIF89a partial") if hasattr(fp, "write") else Path(fp).write_bytes(b"GIF89a partial"))
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(OSError):
        write_video(result.frames, target)
    assert target.read_bytes() == b"old video"
    assert _no_temp_files(tmp_path) == []
