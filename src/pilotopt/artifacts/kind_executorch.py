"""ExecuTorch program (.pte): a flatbuffer with the file identifier "ET" + version at bytes 4-8."""

from __future__ import annotations

from pathlib import Path

from pilotopt.artifacts.kind import Kind, register_kind


def detect(path: Path) -> bool:
    if not path.is_file():
        return False
    with open(path, "rb") as f:
        head = f.read(8)
    return len(head) == 8 and head[4:6] == b"ET" and head[6:8].isdigit()


register_kind(Kind("executorch", "torch", "executorch", "ExecuTorch program (.pte, XNNPACK delegate)", detect,
                   None, None, order=6))  # reading its input would fix ExecuTorch's thread pool
