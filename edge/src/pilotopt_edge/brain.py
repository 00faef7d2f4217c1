"""`Brain.load(deploy_dir).step(rgb_frame) -> (v, w)`: a deploy folder driving.

A deploy folder holds `deploy.json` (the variant, its runtime, the model file and the sha256 of
every file pilotopt wrote, the input contract, the sequence length), the model, and
`reference.npz` (camera frames with the commands pilotopt computed for them). Loading checks the
files against their recorded sha256, so a model altered or swapped after `pilotopt deploy` is
refused before it drives."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections import deque
from typing import Optional, Tuple

import numpy as np

from pilotopt_edge.errors import EdgeError
from pilotopt_edge.feeding import Feeding
from pilotopt_edge.runtimes import Model, load_model

MANIFEST = "deploy.json"
REFERENCE = "reference.npz"
SCHEMA = "pilotopt.deploy/2"


def sha256_of(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_manifest(deploy_dir: str) -> dict:
    path = os.path.join(str(deploy_dir), MANIFEST)
    if not os.path.isfile(path):
        raise EdgeError(f"{deploy_dir} is not a deploy folder (no {MANIFEST}); "
                        "write one with `pilotopt deploy --variant DIR --target edge --out DIR`")
    try:
        with open(path) as f:
            doc = json.load(f)
    except (OSError, ValueError) as exc:
        raise EdgeError(f"{path} is unreadable ({type(exc).__name__}); redeploy the folder with pilotopt deploy") from None
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise EdgeError(f"{path} is not a {SCHEMA} manifest (schema {doc.get('schema') if isinstance(doc, dict) else '?'}); "
                        "redeploy with this version of pilotopt deploy")
    return doc


def verify_files(deploy_dir: str, manifest: dict) -> None:
    """Every file the manifest lists exists and has its recorded sha256."""
    for name, digest in sorted((manifest.get("sha256") or {}).items()):
        path = os.path.join(str(deploy_dir), name)
        if not os.path.isfile(path):
            raise EdgeError(f"{name} is missing from {deploy_dir}; copy the whole deploy folder again")
        if sha256_of(path) != digest:
            raise EdgeError(f"{name} in {deploy_dir} differs from the file pilotopt deployed (sha256 mismatch); "
                            "copy the deploy folder again or rerun pilotopt deploy")


class Brain:
    """A model and its feeding: `step(frame)` -> (v m/s, w rad/s). Recurrent models (sequence
    length T > 1) see the last T views; the first frame fills the whole history."""

    def __init__(self, model: Model, feeding: Feeding, sequence_length: int = 1, manifest: Optional[dict] = None):
        self.model = model
        self.feeding = feeding
        self.sequence_length = max(1, int(sequence_length))
        self.manifest = manifest or {}
        self.history: deque = deque(maxlen=self.sequence_length)
        self.last_model_s = 0.0

    @classmethod
    def load(cls, deploy_dir: str, threads: int = 1, verify: bool = True) -> "Brain":
        manifest = read_manifest(deploy_dir)
        if verify:
            verify_files(deploy_dir, manifest)
        feeding = Feeding.from_dict(manifest.get("input_contract") or {})
        model = load_model(os.path.join(str(deploy_dir), manifest["model"]), manifest["runtime"], threads)
        return cls(model, feeding, manifest.get("sequence_length", 1), manifest)

    def reset(self) -> None:
        self.history.clear()

    def model_input(self, frame) -> np.ndarray:
        """The float32 batch of one the model gets for this frame (history included)."""
        view = self.feeding.image(frame)
        if self.sequence_length == 1:
            return self.feeding.encode(view[None])
        if not self.history:
            self.history.extend([view] * self.sequence_length)
        self.history.append(view)
        return self.feeding.encode(np.stack(self.history)[None])

    def step(self, frame) -> Tuple[float, float]:
        x = self.model_input(frame)
        t0 = time.perf_counter()
        y = self.model.predict(x)
        self.last_model_s = time.perf_counter() - t0
        v, w = self.feeding.outputs.commands(y)
        return float(v[0]), float(w[0])

    def describe(self) -> dict:
        return {"variant": self.manifest.get("variant"), "runtime": self.model.runtime,
                "runtime_version": getattr(self.model, "version", ""), "sequence_length": self.sequence_length}
