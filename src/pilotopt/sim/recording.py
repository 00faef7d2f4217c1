"""Where `pilotopt sim dataset` keeps a recording's metadata (circuit, direction, seed, settings):
written here by the simulator, read back by pilotopt.data.formats.

pilotopt's own files in a dataset root live in a hidden folder, out of sight of the
DeepLearningStudio readers: their TensorFlow reader takes every entry glob.glob(folder + '*') returns
(except data.csv) as a frame named by an integer, so a meta.json inside a recording crashes it, and
glob's '*' (like the shell's) skips names that start with a dot."""

from __future__ import annotations

from pathlib import Path

META_DIR = ".pilotopt"
META_SUFFIX = ".meta.json"
LEGACY_META = "meta.json"  # inside the recording folder, as datasets written before META_DIR have it


def recording_meta_path(folder: Path | str) -> Path:
    """Where pilotopt keeps a recording's metadata: beside the folder,
    `<parent>/.pilotopt/<folder name>.meta.json`, so the folder holds only frames and data.csv."""
    folder = Path(folder)
    return folder.parent / META_DIR / f"{folder.name}{META_SUFFIX}"
