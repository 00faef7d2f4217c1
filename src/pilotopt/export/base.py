"""What every exporter shares: the trained baseline it starts from and the export context (the
loaded framework model, deterministic check frames, intermediate files such as the ONNX that
OpenVINO and TensorRT convert from)."""

from __future__ import annotations

import contextlib
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from pilotopt.errors import BadInputError

TORCH, TF = "torch", "tf"
FRAMEWORK_LABEL = {TORCH: "PyTorch (model.pt checkpoint)", TF: "TensorFlow/Keras (.h5 or SavedModel)"}
BASELINE_VARIANT = {TORCH: "torch", TF: "keras"}  # the variant other exports are checked against
CHECK_FRAMES = 3  # frames each export is verified on (a batch > 1 also exercises the dynamic batch)
CHECK_TOLERANCE = 1e-3  # max |output - baseline output| for an fp32 export to count as ok


@dataclass(frozen=True)
class Baseline:
    """A trained model file and the framework it belongs to."""

    path: Path
    framework: str  # "torch" or "tf"

    @property
    def variant_name(self) -> str:
        return BASELINE_VARIANT[self.framework]


def framework_of(path: Path) -> str | None:
    if path.is_file() and path.suffix == ".pt" and not path.name.endswith(".torchscript.pt"):
        return TORCH
    if (path.is_file() and path.suffix in (".h5", ".keras")) or (path.is_dir() and (path / "saved_model.pb").is_file()):
        return TF
    return None


def resolve_baseline(model_path: Path | str) -> Baseline:
    """A torch checkpoint, a Keras .h5/SavedModel, or a training output folder holding one."""
    from pilotopt.runtimes import resolve_artifact

    path = resolve_artifact(Path(model_path))
    if not path.exists():
        raise BadInputError(f"model '{path}' does not exist; pass a trained model file or training output folder")
    framework = framework_of(path)
    if framework is None:
        raise BadInputError(f"'{path}' is not a trained baseline; pass a PyTorch model.pt checkpoint, a Keras "
                            ".h5 / SavedModel folder, or a training output folder")
    return Baseline(path=path, framework=framework)


@dataclass(frozen=True)
class Exporter:
    """One export target: `fn(ctx, dest)` writes the artifact at `dest` (a file or folder named
    `artifact` inside the variant folder) and may return a dict of details for the record; a
    returned "artifact" key names a different file it wrote in dest's folder instead."""

    name: str
    framework: str  # the baseline framework it needs
    runtime: str  # the predictor that runs the result
    artifact: str
    fn: Callable[["ExportContext", Path], dict | None]
    precision: str = "fp32"
    default: bool = True  # part of export_baseline(targets=None)
    order: int = 100  # position in the default target list
    check: bool = True  # load the result and compare with the baseline after export
    tolerance: float = CHECK_TOLERANCE


class ExportContext:
    """State shared by the targets of one `export_baseline` call."""

    def __init__(self, baseline: Baseline, threads: int | None, scratch: Path):
        self.baseline = baseline
        self.threads = threads
        self.scratch = scratch
        self._predictor = None
        self._reference = None
        self._onnx: Path | None = None
        self._onnx_error: BaseException | None = None

    # -- the baseline model --------------------------------------------------------------------
    @property
    def framework(self) -> str:
        return self.baseline.framework

    @property
    def predictor(self):
        """The framework predictor of the baseline (torch eager or Keras), loaded once."""
        if self._predictor is None:
            from pilotopt.runtimes import load_predictor

            runtime = "torch" if self.framework == TORCH else "keras"
            self._predictor = load_predictor(self.baseline.path, runtime=runtime, threads=self.threads)
        return self._predictor

    @property
    def model_name(self) -> str | None:
        return getattr(self.predictor, "model", None)

    def torch_module(self):
        return self.predictor.net

    def keras_model(self):
        return self.predictor.net

    @property
    def sample_shape(self) -> tuple[int, ...]:
        if self.framework == TORCH:
            from pilotopt.models import get_model_spec

            return tuple(get_model_spec(self.model_name).sample_shape)
        return tuple(int(d) for d in self.keras_model().input_shape[1:])

    def frames(self, n: int, seed: int = 0) -> np.ndarray:
        """`n` deterministic uint8-valued float32 samples of the model's input shape."""
        rng = np.random.default_rng(seed)
        return rng.integers(0, 256, size=(n, *self.sample_shape)).astype(np.float32)

    @property
    def check_frames(self) -> np.ndarray:
        return self.frames(CHECK_FRAMES, seed=1234)

    @property
    def reference(self) -> np.ndarray:
        """Baseline outputs on `check_frames`."""
        if self._reference is None:
            self._reference = self.predictor.predict(self.check_frames)
        return self._reference

    # -- intermediate products -----------------------------------------------------------------
    def onnx_file(self) -> Path:
        """The baseline as fp32 ONNX (dynamic batch), exported once per context."""
        if self._onnx_error is not None:
            raise self._onnx_error
        if self._onnx is None:
            from pilotopt.export.to_onnx import export_torch_onnx

            path = self.scratch / "model.onnx"
            try:
                export_torch_onnx(self.torch_module(), self.frames(2), path)
            except BaseException as exc:
                self._onnx_error = exc
                raise
            self._onnx = path
        return self._onnx


@contextlib.contextmanager
def quiet_conversion() -> Iterator[None]:
    """Converters chatter: C++ log lines on fd 2, Python warnings, progress loggers."""
    import os

    from pilotopt.frameworks import quiet_stderr
    from pilotopt.runtimes._util import quiet_loggers

    ctx = contextlib.nullcontext() if os.environ.get("PILOTOPT_DEBUG") else quiet_stderr()
    with ctx, warnings.catch_warnings(), quiet_loggers("torch.onnx", "torch.export", "torch._export",
                                                        "torch._dynamo", "onnxscript", "absl", "tensorflow",
                                                        level=logging.ERROR):
        warnings.simplefilter("ignore")
        yield
