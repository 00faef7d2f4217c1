"""What every deploy target starts from: the variant opened as its record says, camera frames,
and the commands pilotopt computes for them (the reference a deployed model must reproduce)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pilotopt.artifacts import open_artifact, recorded_variant
from pilotopt.errors import BadInputError
from pilotopt.preprocess import crop_resize
from pilotopt.runtimes import load_artifact_predictor
from pilotopt.sim.brains.expert import ExpertBrain

REFERENCE_CIRCUIT = "simple"


def _frames_from_folder(folder: Path, n: int) -> np.ndarray:
    from PIL import Image

    files = sorted((p for p in folder.rglob("*.png")), key=lambda p: (str(p.parent), int(re.sub(r"\D", "", p.stem) or 0)))
    if not files:
        raise BadInputError(f"no .png camera frames under {folder}; pass a recording folder or an .npz with 'frames'")
    step = max(1, len(files) // n)
    frames = []
    for p in files[::step][:n]:
        try:
            img = np.asarray(Image.open(p).convert("RGB"))
        except OSError as exc:
            raise BadInputError(f"camera frame {p} is unreadable ({exc}); remove it or pass other frames") from None
        frames.append(img)
    return np.stack(frames)


def camera_frames(n: int = 20, circuit: str = REFERENCE_CIRCUIT, seed: int = 0, every: int = 12) -> np.ndarray:
    """`n` 640 x 480 RGB camera frames of the built-in simulator, the expert driving `circuit`, one
    every `every` ticks (spread along the lap, curves included); deterministic under `seed`."""
    # numba and scipy: imported on first use, not with this module
    from pilotopt.sim.circuits import load_circuit
    from pilotopt.sim.simulation import SimSettings, Simulation

    sim = Simulation(load_circuit(circuit, "anticlockwise"), settings=SimSettings(timeout=1e9), seed=seed)
    expert = ExpertBrain()
    expert.reset(sim)
    frames = []
    while len(frames) < n and not sim.done:
        if sim.tick % every == 0:
            frames.append(sim.frame())
        sim.step(*expert.step(None))
    return np.stack(frames)


def read_frames(spec: Path | str | None, n: int) -> np.ndarray:
    if spec is None:
        return camera_frames(n)
    path = Path(spec)
    if path.is_dir():
        frames = _frames_from_folder(path, n)
    elif path.suffix == ".npz" and path.is_file():
        with np.load(path) as doc:
            if "frames" not in doc:
                raise BadInputError(f"{path} has no 'frames' array; save camera frames as np.savez(path, frames=...)")
            frames = np.asarray(doc["frames"])[:n]
    else:
        raise BadInputError(f"frames '{path}' is neither a folder of .png camera frames nor an .npz with 'frames'")
    if frames.ndim != 4 or frames.shape[1:] != (480, 640, 3) or frames.dtype != np.uint8:
        raise BadInputError(f"frames in {path} are {frames.shape} {frames.dtype}; deploy needs 640 x 480 RGB uint8 "
                            "camera frames (the camera Behavior Metrics and pilotopt's simulator give)")
    return frames


@dataclass
class DeploySource:
    folder: Path | None  # the variant folder (None for a bare model file)
    name: str
    artifact: object  # pilotopt.artifacts.Artifact, its contract and arch attached
    frames: np.ndarray
    threads: int = 1
    record: dict = field(default_factory=dict)
    _commands: np.ndarray | None = None

    @classmethod
    def open(cls, variant: Path | str, frames=None, n_frames: int = 20, threads: int = 1) -> "DeploySource":
        variant = Path(variant)
        if not variant.exists():
            raise BadInputError(f"variant '{variant}' does not exist; pass a variant folder (OUT/variants/NAME) "
                                "or a model file")
        art = open_artifact(variant)
        rec = recorded_variant(variant)
        folder, name, record = (rec[0], rec[1].name, rec[1].record or {}) if rec else (None, art.path.stem, {})
        return cls(folder, name, art, read_frames(frames, n_frames), threads, record)

    @property
    def contract(self):
        return self.artifact.contract

    @property
    def runtime(self) -> str:
        return self.artifact.runtime

    @property
    def sequence_length(self) -> int:
        return int(self.artifact.metadata.get("sequence_length") or 1)

    def predictor(self):
        return load_artifact_predictor(self.artifact, threads=self.threads)

    def commands(self) -> np.ndarray:
        """(N, 2) physical (v, w) pilotopt computes for the frames: its own crop and resize, the
        contract's encoding, the runtime that evaluated the variant, the output map unclipped."""
        if self._commands is None:
            self._commands = commands_of(self.predictor(), self.frames, self.sequence_length)
        return self._commands


def commands_of(predictor, frames: np.ndarray, sequence_length: int = 1) -> np.ndarray:
    """Frames -> physical (v, w) through a ContractPredictor, frame by frame as a brain steps
    (a recurrent model sees the last T views, the first frame repeated at the start)."""
    contract = predictor.contract
    views = [crop_resize(f, contract.geometry) for f in frames]
    out = []
    for i, _ in enumerate(views):
        if sequence_length > 1:
            hist = [views[max(0, j)] for j in range(i - sequence_length + 1, i + 1)]
            batch = np.stack(hist)[None]
        else:
            batch = views[i][None]
        v, w = contract.commands(predictor.raw.predict(contract.encode(batch)))
        out.append((float(v[0]), float(w[0])))
    return np.asarray(out, dtype=np.float64)
