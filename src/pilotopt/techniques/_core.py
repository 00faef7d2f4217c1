"""The technique registry and what a technique's `apply` sees (the context) and returns (Result).

Importing this module imports neither TensorFlow nor torch: `available()` checks must stay cheap
and framework imports happen inside `apply`, in the child process that runs it."""

from __future__ import annotations

import dataclasses
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from pilotopt.errors import BadInputError, RuntimeUnavailable
from pilotopt.techniques._settings import Settings, make_settings, params

TF, TORCH = "tf", "torch"
# The artifact kinds (pilotopt.artifacts) a technique of each framework takes as its input.
FRAMEWORK_KINDS = {TORCH: ("torch_checkpoint", "torch_state_dict"), TF: ("keras_h5", "keras_v3", "saved_model")}
# what the ONNX-based techniques start from (a tf_keras .h5 through tf2onnx)
ONNX_SOURCES = (*FRAMEWORK_KINDS[TORCH], "torchscript", "onnx", "keras_h5")
BASELINE_VARIANT = {TORCH: "torch", TF: "keras", "torchscript": "torch", "onnx": "onnx_fp32"}
# The artifact kind a technique produces, by the runtime that runs it (`produces=` overrides it).
RUNTIME_KIND = {"keras": "keras_h5", "litert": "tflite", "tftrt": "tftrt_saved_model", "torch": "torch_checkpoint",
                "torchscript": "torchscript", "torch_export": "torch_export", "torch_compile": "torch_checkpoint",
                "onnxruntime": "onnx", "openvino": "openvino", "tensorrt": "tensorrt", "executorch": "executorch"}


@dataclass(frozen=True)
class NoSettings(Settings):
    """A technique without settings."""


@dataclass
class Result:
    """What `apply` returns: the artifact's file (or folder) name inside ctx.out, and details for
    the variant record (the runner adds settings, duration, size and the baseline check)."""

    artifact: str
    record: dict = field(default_factory=dict)
    runtime: str | None = None  # when it differs from the technique's (e.g. a TorchScript input kept as is)


def _always() -> tuple[bool, str]:
    return True, ""


@dataclass(frozen=True)
class Technique:
    name: str
    framework: str  # the baseline framework it starts from: "tf" or "torch"
    runtime: str  # the predictor that runs its artifact (pilotopt.runtimes)
    description: str
    settings_cls: type = NoSettings
    apply: Callable[["TechniqueContext"], Result] | None = None
    available: Callable[[], tuple[bool, str]] = _always
    needs_data: bool = False  # uses the training split (calibration, fine-tuning)
    tolerance: float | None = None  # max |output - baseline output| on check frames (None: only recorded)
    module: str = ""  # imported by the child process before it looks the technique up
    order: int = 100
    accepts: tuple[str, ...] = ()  # artifact kinds it takes as input
    produces: str = ""  # the artifact kind it writes (a chain's next step must accept it)
    conversion: bool = False  # a plain format conversion, which a chain may insert by itself
    finish: str | None = None  # conversion appended when it ends a chain (a fine-tuned Keras model -> LiteRT)
    steps: tuple[str, ...] = ()  # a registered chain: the techniques it runs in order (apply is None)
    step_settings: dict = field(default_factory=dict)  # a registered chain's own settings per step

    def takes(self, kind: str) -> bool:
        return kind in self.accepts

    @property
    def is_chain(self) -> bool:
        return bool(self.steps)

    def default_settings(self):
        return self.settings_cls()

    @property
    def settings(self):
        """Its declared settings (pilotopt.techniques._settings.Param), in order."""
        return params(self.settings_cls)

    def make_settings(self, overrides: dict | None = None):
        return make_settings(self.name, self.settings_cls, overrides)


_TECHNIQUES: dict[str, Technique] = {}


def register_technique(name: str, *, framework: str, runtime: str, description: str,
                       settings: type = NoSettings, available: Callable[[], tuple[bool, str]] | None = None,
                       needs_data: bool = False, tolerance: float | None = None, order: int = 100,
                       accepts: tuple[str, ...] | None = None, produces: str | None = None,
                       conversion: bool = False, finish: str | None = None):
    """Decorator for `apply(ctx) -> Result`; registers the technique under `name`. `accepts` /
    `produces`: the artifact kinds it takes and writes (defaults: its framework's model kinds, and
    the kind its runtime runs); `conversion`: it only changes the format; `finish`: the conversion a
    chain ending in this technique gets appended (a pass that writes a training-framework model)."""
    if framework not in (TF, TORCH):
        raise ValueError(f"framework must be '{TF}' or '{TORCH}', got {framework!r}")
    if not dataclasses.is_dataclass(settings):
        raise TypeError(f"settings of technique '{name}' must be a dataclass")
    params(settings)  # every field declared (type, default, bounds, description): TypeError here if not

    def deco(fn: Callable[["TechniqueContext"], Result]):
        _TECHNIQUES[name] = Technique(name=name, framework=framework, runtime=runtime, description=description,
                                      settings_cls=settings, apply=fn, available=available or _always,
                                      needs_data=needs_data, tolerance=tolerance, module=fn.__module__,
                                      order=order, accepts=tuple(accepts or FRAMEWORK_KINDS[framework]),
                                      produces=produces or RUNTIME_KIND.get(runtime, runtime),
                                      conversion=conversion, finish=finish)
        return fn

    return deco


def unregister_technique(name: str) -> None:
    _TECHNIQUES.pop(name, None)


def _load_all() -> None:
    import importlib
    import pkgutil

    import pilotopt.techniques as pkg

    for mod in pkgutil.iter_modules(pkg.__path__):
        if not mod.name.startswith("_"):
            importlib.import_module(f"{pkg.__name__}.{mod.name}")


def techniques() -> dict[str, Technique]:
    """Every registered technique, in listing order."""
    _load_all()
    return dict(sorted(_TECHNIQUES.items(), key=lambda kv: (kv[1].order, kv[0])))


def technique_names() -> list[str]:
    return list(techniques())


def get_technique(name: str) -> Technique:
    known = techniques()
    if name not in known:
        raise BadInputError(f"unknown technique '{name}'; choose from {', '.join(known)}")
    return known[name]


# -- the context -----------------------------------------------------------------------------------
class TechniqueContext:
    """What `apply` gets: its input artifact (`baseline`: a pilotopt.artifacts.Artifact with its
    input contract; each `keras_model()` / `torch_model()` call loads a fresh copy from disk, so a
    technique can never change its input), the TRAINING split only, seen through the artifact's
    input contract (frames in the model's own layout and scaling, labels in its output space),
    settings, seed, threads and `out`, an empty folder to write the artifact into."""

    def __init__(self, baseline, settings, seed: int, threads: int | None, out: Path, data_config=None):
        self.baseline = baseline  # pilotopt.artifacts.Artifact
        self.settings = settings
        self.seed = seed
        self.threads = threads
        self.out = Path(out)
        self._data_config = data_config
        self._train = None

    @property
    def contract(self):
        return self.baseline.contract

    @property
    def sequence_length(self) -> int:
        return int(self.baseline.metadata.get("sequence_length") or 1)

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """The model's own per-sample input shape (its contract's layout and size)."""
        return self.contract.sample_shape(self.sequence_length)

    # frameworks
    @property
    def tf(self):
        from pilotopt.frameworks import import_tf

        return import_tf(self.threads)

    def keras_model(self):
        """A fresh copy of the Keras input model (loaded from disk, TF-MOT registries ready), its
        input re-declared to the contract's size when it was declared transposed."""
        self.tf  # noqa: B018 - import with our thread settings first
        from pilotopt.models.keras_input import load_keras

        return load_keras(self.baseline.path, self.sample_shape)

    @property
    def torch(self):
        from pilotopt.frameworks import import_torch

        return import_torch(self.threads)

    @property
    def torch_model_name(self) -> str:
        return self.baseline.arch or self._torch_loaded()[1]

    def _torch_loaded(self):
        from pilotopt.runtimes.torch_eager import load_torch_module

        if self.baseline.kind.name not in ("torch_checkpoint", "torch_state_dict"):
            raise RuntimeUnavailable(f"this technique needs a PyTorch checkpoint or state dict; "
                                     f"'{self.baseline.path}' is {self.baseline.kind.description}")
        self.torch  # noqa: B018 - thread settings first
        return load_torch_module(self.baseline.path, self.baseline.arch, self.baseline.arch_args, seed=self.seed)

    def torch_model(self):
        """A fresh copy of the PyTorch input model (eval mode), built from its file on disk."""
        return self._torch_loaded()[0]

    def save_torch_checkpoint(self, net, name: str = "model.pt", arch: str | None = None, meta: dict | None = None) -> str:
        """`net`'s weights in pilotopt's checkpoint format (loadable by the `torch` runtime)."""
        from pilotopt.artifacts.torch_files import load_archive

        source = load_archive(self.baseline.path)
        old_meta = source.get("meta") if isinstance(source, dict) and isinstance(source.get("meta"), dict) else {}
        self.torch.save({"format": "pilotopt.torch/1", "model": arch or self.torch_model_name,
                         "state_dict": {k: v.detach().clone().contiguous() for k, v in net.state_dict().items()},
                         "meta": {**dict(old_meta), **dict(meta or {})}}, self.out / name)
        return name

    def copy_baseline(self, name: str | None = None) -> str:
        """Copy the input file/folder into `out` unchanged; returns the artifact name."""
        src = self.baseline.path
        name = name or src.name
        if src.is_dir():
            shutil.copytree(src, self.out / name)
        else:
            shutil.copy2(src, self.out / name)
        return name

    # data
    @property
    def train(self):
        """The training split (never validation or test), in the model's own input and output space."""
        if self._train is None:
            if self._data_config is None:
                raise BadInputError("this technique needs training data; pass --data with dataset folder(s)")
            from pilotopt.contracts.encoded_split import EncodedSplit
            from pilotopt.data import load_splits

            split = load_splits(self._data_config).train
            if len(split) == 0:
                raise BadInputError("the training split is empty; check --data and the test circuits")
            self._train = EncodedSplit(split, self.contract)
        return self._train

    def train_frames(self, n: int) -> np.ndarray:
        """`n` training frames (evenly spread after a seeded shuffle) as the model's float32 input."""
        split = self.train
        order = np.random.default_rng(self.seed).permutation(len(split))[: max(1, min(int(n), len(split)))]
        x, _ = split.batch(np.sort(order))
        return x.astype(np.float32)

    def raw_shape(self, n: int) -> tuple[int, ...]:
        """Shape of `n` camera images (uint8, before the contract) for one model input each."""
        g = self.contract.geometry
        return (n, self.sequence_length, *g.image_shape) if self.sequence_length > 1 else (n, *g.image_shape)

    def random_frames(self, n: int, seed: int = 0) -> np.ndarray:
        """`n` seeded random uint8 images through the contract: the model's input without data."""
        raw = np.random.default_rng(seed).integers(0, 256, size=self.raw_shape(n)).astype(np.uint8)
        return self.contract.encode(raw)
