"""Atomic writes: a later stage never trusts a half-written file, so write to a temp name and rename.
Also where pilotopt keeps its caches (`default_cache_dir`)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Iterator

from pilotopt.errors import PilotoptError


def default_cache_dir() -> Path:
    """`$PILOTOPT_CACHE` or `~/.cache/pilotopt` (the frame cache, the simulator's ground fields)."""
    env = os.environ.get("PILOTOPT_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "pilotopt"


def ensure_writable_dir(path: Path | str) -> Path:
    """Create `path` (and parents) or fail with a one-line error that names it."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=path, prefix=".pilotopt-probe-", delete=True)
        probe.close()
    except OSError as exc:
        raise PilotoptError(
            f"cannot write to output folder '{path}': {exc.strerror or exc}; choose a writable folder"
        ) from None
    return path


@contextlib.contextmanager
def atomic_path(target: Path | str) -> Iterator[Path]:
    """Yield a temporary sibling path; on success rename it onto `target` (file or directory)."""
    target = Path(target)
    ensure_writable_dir(target.parent)
    tmp = target.parent / temp_name(target.name)
    _remove(tmp)
    try:
        yield tmp
        if target.exists() and target.is_dir() and tmp.is_dir():
            _remove(target)
        os.replace(tmp, target)
    finally:
        _remove(tmp)


def temp_name(name: str) -> str:
    """`.name.tmp-PID-THREAD`: unique to the writer, even for two threads of one process."""
    return f".{name}.tmp-{os.getpid()}-{threading.get_ident()}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale(folder: Path | str) -> list[Path]:
    """Remove temp siblings (`.name.tmp-PID-THREAD`) left under `folder` by a killed process (PID gone).
    They were never trusted (no stage reads a temp name); this only reclaims their space."""
    removed = []
    folder = Path(folder)
    if not folder.is_dir():
        return removed
    for p in folder.rglob(".*.tmp-*"):
        pid = p.name.rsplit(".tmp-", 1)[-1].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
            _remove(p)
            removed.append(p)
    return removed


def write_bytes(target: Path | str, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_text(target: Path | str, text: str) -> None:
    write_bytes(target, text.encode("utf-8"))


def write_json(target: Path | str, obj) -> None:
    write_text(target, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def _json_default(obj):
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink(missing_ok=True)
