"""An artifact's files, bytes on disk, gzip size and content digest (the one digest pilotopt uses:
cache keys of variants, offline rows and drives all come from here).

A folder is the sum of its files; a single-file artifact brings its companions (OpenVINO's
model.xml + model.bin, ONNX external data). gzip is of a deterministic tar (sorted names, zero
times and owners), so the same files always give the same number."""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from pathlib import Path

_CHUNK = 1 << 20
COMPANIONS = {".xml": ("{stem}.bin",), ".onnx": ("{name}.data", "{name}_data", "{stem}.data")}


def artifact_files(path: Path) -> list[Path]:
    """The regular files of an artifact: the file and its companions, or every file under a folder, sorted."""
    path = Path(path)
    if path.is_file():
        extra = [path.with_name(pattern.format(stem=path.stem, name=path.name))
                 for pattern in COMPANIONS.get(path.suffix, ())]
        return [path, *sorted({p for p in extra if p.is_file() and p != path})]
    return sorted((p for p in path.rglob("*") if p.is_file()), key=lambda p: p.relative_to(path).as_posix())


def _arcname(p: Path, path: Path) -> str:
    return p.relative_to(path).as_posix() if path.is_dir() else p.name


def artifact_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in artifact_files(path))


class _Counter(io.RawIOBase):
    """A write-only sink that only counts bytes (so gzip sizes of big artifacts need no memory)."""

    def __init__(self) -> None:
        self.n = 0

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        n = memoryview(b).nbytes
        self.n += n
        return n


def gzip_bytes(path: Path, level: int = 9) -> int:
    """gzip size (level 9, no name, mtime 0) of the file, or of a deterministic tar of its files."""
    path = Path(path)
    files = artifact_files(path)
    sink = _Counter()
    with gzip.GzipFile(filename="", mode="wb", compresslevel=level, fileobj=sink, mtime=0) as gz:
        if files == [path]:
            with open(path, "rb") as f:
                while chunk := f.read(_CHUNK):
                    gz.write(chunk)
        else:
            with tarfile.open(fileobj=gz, mode="w", format=tarfile.USTAR_FORMAT) as tar:
                for p in files:
                    info = tarfile.TarInfo(_arcname(p, path))
                    info.size = p.stat().st_size
                    info.mtime, info.mode, info.uid, info.gid, info.uname, info.gname = 0, 0o644, 0, 0, "", ""
                    with open(p, "rb") as f:
                        tar.addfile(info, f)
    return sink.n


def artifact_digest(path: Path) -> str:
    """sha256 of the artifact's relative file names, sizes and contents."""
    path = Path(path)
    h = hashlib.sha256()
    for p in artifact_files(path):
        h.update(f"{_arcname(p, path)}\0{p.stat().st_size}\0".encode())
        with open(p, "rb") as f:
            while chunk := f.read(_CHUNK):
                h.update(chunk)
    return h.hexdigest()


def size_info(path: Path | None) -> dict:
    """bytes and gzip_bytes of an existing artifact (None values otherwise)."""
    if path is None or not Path(path).exists():
        return {"bytes": None, "gzip_bytes": None}
    return {"bytes": artifact_bytes(path), "gzip_bytes": gzip_bytes(path)}
