"""Write a drive's camera frames (`DriveResult.frames`) as a video: `.mp4` (H.264 via imageio-ffmpeg)
or `.gif` (Pillow). The file appears atomically: a reader sees either nothing or the whole video."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
from PIL import Image

from pilotopt.atomic import atomic_path
from pilotopt.errors import BadInputError, PilotoptError

FORMATS = (".mp4", ".gif")
DEFAULT_SCALE = {".mp4": 1.0, ".gif": 0.5}  # GIFs are large: halve the frames unless told otherwise
MP4_CRF = 23


def write_video(frames: Iterable[np.ndarray], path: Path | str, fps: float = 20.0,
                scale: float | None = None) -> Path:
    """Write RGB uint8 frames (H x W x 3, all the same size) to `path` (.mp4 or .gif).

    `scale` resizes every frame (0.5: half width and height); None uses 1.0 for MP4 and 0.5 for GIF.
    MP4 frames are cropped by at most one pixel to even dimensions (yuv420p needs them).
    A GIF merges consecutive identical frames into one longer frame (Pillow's behaviour).
    Returns the path written.
    """
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in FORMATS:
        shown = path.suffix or "(no extension)"
        raise BadInputError(f"unsupported video format '{shown}'; use .mp4 or .gif")
    try:
        fps = float(fps)
    except (TypeError, ValueError):
        raise BadInputError(f"video fps must be a number, got {fps!r}") from None
    if not math.isfinite(fps) or fps <= 0:
        raise BadInputError(f"video fps must be > 0, got {fps}")
    if scale is None:
        scale = DEFAULT_SCALE[ext]
    try:
        scale = float(scale)
    except (TypeError, ValueError):
        raise BadInputError(f"video scale must be a number, got {scale!r}") from None
    if not math.isfinite(scale) or scale <= 0:
        raise BadInputError(f"video scale must be > 0, got {scale}")

    frames = list(frames) if frames is not None else []
    if not frames:
        raise BadInputError(f"no frames to write to '{path}'; drive with video_every > 0 to record frames")
    height, width = _check_frames(frames)
    out_w, out_h = max(1, round(width * scale)), max(1, round(height * scale))
    if ext == ".mp4":
        out_w, out_h = max(2, out_w - out_w % 2), max(2, out_h - out_h % 2)
    prepared = (_resize(f, out_w, out_h) for f in frames)

    with atomic_path(path) as tmp:
        if ext == ".gif":
            _write_gif(prepared, tmp, fps)
        else:
            _write_mp4(prepared, tmp, fps, (out_w, out_h))
    return path


# ----------------------------------------------------------------------------- helpers
def _check_frames(frames: list) -> tuple[int, int]:
    shape = None
    for i, f in enumerate(frames):
        a = np.asarray(f)
        if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] != 3 or a.shape[0] < 1 or a.shape[1] < 1:
            raise BadInputError(f"video frame {i} is {a.dtype} {a.shape}; frames must be uint8 H x W x 3 RGB")
        if shape is None:
            shape = a.shape
        elif a.shape != shape:
            raise BadInputError(f"video frame {i} is {a.shape[1]}x{a.shape[0]} but frame 0 is "
                                f"{shape[1]}x{shape[0]}; all frames must have the same size")
    return shape[0], shape[1]


def _resize(frame: np.ndarray, w: int, h: int) -> np.ndarray:
    a = np.asarray(frame)
    if a.shape[1] == w and a.shape[0] == h:
        return np.ascontiguousarray(a)
    if abs(a.shape[1] - w) <= 1 and abs(a.shape[0] - h) <= 1 and a.shape[1] >= w and a.shape[0] >= h:
        return np.ascontiguousarray(a[:h, :w])  # even-size crop only
    return np.asarray(Image.fromarray(a).resize((w, h), Image.Resampling.BILINEAR, reducing_gap=2.0))


def _write_gif(frames: Iterator[np.ndarray], tmp: Path, fps: float) -> None:
    images = [Image.fromarray(f) for f in frames]
    duration = max(10, int(round(1000.0 / fps / 10.0)) * 10)  # GIF delays are whole centiseconds
    with open(tmp, "wb") as fh:
        images[0].save(fh, format="GIF", save_all=True, append_images=images[1:], duration=duration,
                       loop=0, optimize=False)


def _write_mp4(frames: Iterator[np.ndarray], tmp: Path, fps: float, size: tuple[int, int]) -> None:
    import imageio_ffmpeg

    writer = imageio_ffmpeg.write_frames(
        str(tmp), size, fps=fps, codec="libx264", pix_fmt_in="rgb24", pix_fmt_out="yuv420p",
        quality=None, macro_block_size=1, ffmpeg_log_level="error",
        output_params=["-crf", str(MP4_CRF), "-preset", "veryfast", "-movflags", "+faststart", "-f", "mp4"],
    )
    try:
        writer.send(None)  # start ffmpeg
        for f in frames:
            writer.send(f.tobytes())
        writer.close()
    except (OSError, RuntimeError) as exc:
        writer.close()
        msg = " ".join(str(exc).split())[:300]
        raise PilotoptError(f"could not write MP4 video with ffmpeg: {msg}") from None
