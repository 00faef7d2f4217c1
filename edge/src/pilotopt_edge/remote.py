"""What a Ray node runs for `pilotopt --target ray:RESOURCE`: the edge CLI on a deploy folder kept
in the node's own cache, in a child process of the node's Python (a fresh process, timed like a
bench run by hand). Standard library only, so a node needs nothing but this package and a runtime."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from typing import List, Optional

CACHE = os.path.join(os.path.expanduser("~"), ".cache", "pilotopt-edge", "deploy")


def _node_id() -> Optional[str]:
    try:
        import ray

        return ray.get_runtime_context().get_node_id()
    except Exception:  # noqa: BLE001 - not inside a Ray worker
        return None


def on_node(op: str, address: str = "", tar: Optional[bytes] = None, args: Optional[List[str]] = None) -> dict:
    """op "has": whether the folder is cached here; "send": unpack `tar` there (renamed into place
    when complete); "device" / "bench": run `pilotopt-edge ARGS` and return its JSON line (the
    folder's path is appended to a bench's ARGS). Every reply carries the node id."""
    folder = os.path.join(CACHE, address) if address else ""
    reply: dict = {"node_id": _node_id()}
    if op == "has":
        reply["has"] = os.path.isfile(os.path.join(folder, ".complete"))
    elif op == "send":
        part = f"{folder}.part.{os.getpid()}"
        shutil.rmtree(part, ignore_errors=True)
        os.makedirs(part)
        with tarfile.open(fileobj=io.BytesIO(tar or b""), mode="r") as t:
            t.extractall(part, filter="data") if sys.version_info >= (3, 12) else t.extractall(part)
        open(os.path.join(part, ".complete"), "w").close()
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(part, folder)
    else:
        argv = [sys.executable, "-m", "pilotopt_edge.cli", op, *(args or []), *([folder] if folder else [])]
        proc = subprocess.run(argv, capture_output=True, text=True)
        reply["returncode"] = proc.returncode
        reply["stderr"] = proc.stderr.strip().splitlines()[-1:] if proc.stderr.strip() else []
        lines = proc.stdout.strip().splitlines()
        try:
            reply["result"] = json.loads(lines[-1]) if lines else None
        except ValueError:
            reply["result"] = None
    return reply
