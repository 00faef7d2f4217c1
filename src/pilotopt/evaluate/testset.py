"""The evaluation frames, prepared once in the parent and memory-mapped by every worker, so every
variant sees byte-identical inputs.

The test split is the held-out circuits as loaded for training (no flip, no oversampling), in
order; `max_frames` keeps that many samples evenly spaced over it. Recurrent models need the
frames before each sample, so the folder stores

    frames.npy    uint8 (M, H, W, 3)     every frame any sample needs, at the contract's geometry
    windows.npy   int64 (N, T_MAX)       per sample, indices into frames of the last T_MAX frames
                                         (repeating a recording's first frame, as training does);
                                         a model with T frames uses the last T columns
    labels.npy    float32 (N, 2)         normalized (v, w) of each sample
    camera.npy    uint8 (480, 640, 3)    one rendered camera frame for the whole-brain-step timing
    testset.json  what it is: circuits, recordings, counts, digest
"""

from __future__ import annotations

import hashlib
import json
import shutil
from functools import lru_cache
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from pilotopt.atomic import atomic_path
from pilotopt.data import DataConfig, load_splits
from pilotopt.errors import BadInputError
from pilotopt.models import get_model_spec, model_names
from pilotopt.preprocess import PILOTNET_GEOMETRY

TESTSET_FILE = "testset.json"
CAMERA_CIRCUIT = "simple"


def max_sequence_length() -> int:
    return max(get_model_spec(n).sequence_length for n in model_names())


def sample_windows(recording: np.ndarray, length: int) -> np.ndarray:
    """(N,) recording id per sample, samples consecutive frames of their recording in order ->
    (N, length) sample indices of the `length` samples ending at each, clipped at the recording's
    first sample."""
    n = len(recording)
    idx = np.arange(n, dtype=np.int64)
    new = np.ones(n, bool)
    new[1:] = recording[1:] != recording[:-1]
    first = np.maximum.accumulate(np.where(new, idx, 0))
    back = np.arange(length - 1, -1, -1, dtype=np.int64)
    return np.maximum(idx[:, None] - back[None, :], first[:, None])


def evenly_spaced(n: int, max_frames: int | None) -> np.ndarray:
    if max_frames is None or max_frames >= n:
        return np.arange(n, dtype=np.int64)
    return np.unique(np.linspace(0, n - 1, max_frames).round().astype(np.int64))


def camera_frame() -> tuple[np.ndarray, dict]:
    """One 640 x 480 frame rendered on the centre line of the simple circuit (deterministic)."""
    frame, info = _camera_frame()
    return frame.copy(), dict(info)


@lru_cache(maxsize=1)
def _camera_frame() -> tuple[np.ndarray, dict]:
    # numba and scipy: imported on first use, not with this module
    from pilotopt.sim.circuits import load_circuit
    from pilotopt.sim.render import Renderer

    track = load_circuit(CAMERA_CIRCUIT)
    i = 10
    pose = (float(track.points[i, 0]), float(track.points[i, 1]), float(track.heading_at(i)))
    return np.ascontiguousarray(Renderer(track).render_frame(pose, 0)), {"circuit": CAMERA_CIRCUIT, "pose": pose}


def prepare_testset(data_roots: Sequence[Path | str], test_circuits: Sequence[str], cache_dir: Path | str | None,
                    max_frames: int | None, work_dir: Path,
                    progress: Callable[[int, int], None] | None = None, geometry=None,
                    keep: Sequence[Path] = ()) -> tuple[Path, dict]:
    """Load the test split at `geometry` (an input contract's crop and size; default PilotNet's),
    write it under work_dir/testset-<digest> (reused if already there) and return (folder,
    description). Other test sets in work_dir are removed unless named in `keep`."""
    geometry = geometry or PILOTNET_GEOMETRY
    cfg = DataConfig(roots=list(data_roots), test_circuits=tuple(test_circuits), cache_dir=cache_dir,
                     flip=False, oversample=1, sequence_length=1, geometry=geometry)
    splits = load_splits(cfg, progress=progress)
    test = splits.test
    total = len(test)
    if total == 0:
        raise BadInputError(f"the test circuits ({', '.join(cfg.test_circuits)}) have no frames in the data")
    t_max = max_sequence_length()
    info = test.info()
    _, rec_id = np.unique(info["recording"].astype(str), return_inverse=True)
    chosen = evenly_spaced(total, max_frames)
    win = sample_windows(rec_id, t_max)[chosen]
    needed, inverse = np.unique(win, return_inverse=True)
    frames, _ = test.batch(needed)
    windows = inverse.reshape(win.shape).astype(np.int64)
    labels = test.labels[chosen].astype(np.float32)
    camera, camera_info = camera_frame()

    h = hashlib.sha256()
    h.update(geometry.key.encode())
    for arr in (frames, windows, labels, camera):
        h.update(str((arr.dtype.str, arr.shape)).encode())
        h.update(np.ascontiguousarray(arr).tobytes())
    digest = h.hexdigest()
    meta = {
        "digest": digest,
        "samples": int(len(chosen)),
        "test_samples_total": int(total),
        "stored_frames": int(len(frames)),
        "max_frames": max_frames,
        "window": t_max,
        "circuits": list(test.circuits),
        "recordings": [str(r) for r in test.recordings],
        "test_circuits": list(cfg.test_circuits),
        "flip": False,
        "oversample": 1,
        "data_cache": splits.summary.get("cache_path"),
        "camera_frame": camera_info,
        "geometry": vars(geometry),
    }
    folder = Path(work_dir) / f"testset-{digest[:16]}"
    done = folder / TESTSET_FILE
    if not (done.is_file() and json.loads(done.read_text()).get("digest") == digest):
        with atomic_path(folder) as tmp:
            tmp.mkdir(parents=True)
            for name, arr in (("frames", frames), ("windows", windows), ("labels", labels), ("camera", camera)):
                np.save(tmp / f"{name}.npy", arr, allow_pickle=False)
            (tmp / TESTSET_FILE).write_text(json.dumps(meta, indent=1) + "\n")
    for old in Path(work_dir).glob("testset-*"):  # earlier test sets in our own work folder
        if old.is_dir() and old != folder and old not in set(map(Path, keep)) and not old.name.startswith("."):
            shutil.rmtree(old, ignore_errors=True)
    return folder, meta


class EvalFrames:
    """The worker's view: memory-mapped frames, model inputs of any sequence length."""

    def __init__(self, folder: Path | str):
        folder = Path(folder)
        self.frames = np.load(folder / "frames.npy", mmap_mode="r")
        self.windows = np.load(folder / "windows.npy")
        self.labels = np.load(folder / "labels.npy")
        self.camera = np.load(folder / "camera.npy")

    def __len__(self) -> int:
        return len(self.windows)

    def inputs(self, idx, sequence_length: int = 1) -> np.ndarray:
        """float32 images of samples `idx`: (B, H, W, 3), or (B, T, H, W, 3) if T > 1 (pixel values)."""
        w = self.windows[np.asarray(idx, dtype=np.int64)]
        if sequence_length <= 1:
            return np.asarray(self.frames[w[:, -1]], dtype=np.float32)
        return np.asarray(self.frames[w[:, -sequence_length:]], dtype=np.float32)
