"""The technique registry and what a technique's `apply` sees (the context) and returns (Result).

Importing this module imports neither TensorFlow nor torch: `available()` checks must stay cheap
and framework imports happen inside `apply`, in the child process that runs it."""

from __future__ import annotations

import dataclasses
import shutil
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from pilotopt.errors import BadInputError

TF, TORCH = "tf", "torch"


@dataclass(frozen=True)
class NoSettings:
    """A technique without settings."""


@dataclass
class Result:
    """What `apply` returns: the artifact's file (or folder) name inside ctx.out, and details for
    the variant record (the runner adds settings, duration, size and the baseline check)."""

    artifact: str
    record: dict = field(default_factory=dict)


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

    def default_settings(self):
        return self.settings_cls()

    def make_settings(self, overrides: dict | None = None):
        return make_settings(self.name, self.settings_cls, overrides)


_TECHNIQUES: dict[str, Technique] = {}


def register_technique(name: str, *, framework: str, runtime: str, description: str,
                       settings: type = NoSettings, available: Callable[[], tuple[bool, str]] | None = None,
                       needs_data: bool = False, tolerance: float | None = None, order: int = 100):
    """Decorator for `apply(ctx) -> Result`; registers the technique under `name`."""
    if framework not in (TF, TORCH):
        raise ValueError(f"framework must be '{TF}' or '{TORCH}', got {framework!r}")
    if not dataclasses.is_dataclass(settings):
        raise TypeError(f"settings of technique '{name}' must be a dataclass")

    def deco(fn: Callable[["TechniqueContext"], Result]):
        _TECHNIQUES[name] = Technique(name=name, framework=framework, runtime=runtime, description=description,
                                      settings_cls=settings, apply=fn, available=available or _always,
                                      needs_data=needs_data, tolerance=tolerance, module=fn.__module__,
                                      order=order)
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


# -- settings --------------------------------------------------------------------------------------
def make_settings(technique: str, cls: type, overrides: dict | None = None):
    """`cls()` with `overrides` applied; unknown keys and values of the wrong type -> BadInputError.
    String values (from the command line) are converted to the field's type."""
    overrides = dict(overrides or {})
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = [k for k in overrides if k not in fields]
    if unknown:
        valid = ", ".join(fields) if fields else "(none: it has no settings)"
        raise BadInputError(f"unknown setting(s) {', '.join(map(str, unknown))} for technique '{technique}'; "
                            f"valid settings: {valid}")
    defaults = cls()
    hints = typing.get_type_hints(cls)
    values = {}
    for key, value in overrides.items():
        values[key] = _coerce(technique, key, value, getattr(defaults, key), hints.get(key))
    return dataclasses.replace(defaults, **values)


def _coerce(technique: str, key: str, value: Any, default: Any, hint: Any) -> Any:
    where = f"setting {technique}.{key}"
    kind = type(default) if default is not None else hint
    try:
        if isinstance(default, bool):
            if isinstance(value, str):
                low = value.strip().lower()
                if low in ("1", "true", "yes", "on"):
                    return True
                if low in ("0", "false", "no", "off"):
                    return False
                raise ValueError
            if isinstance(value, (bool, np.bool_)):
                return bool(value)
            raise ValueError
        if isinstance(default, int):
            if isinstance(value, bool):
                raise ValueError
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value)
        if isinstance(default, float):
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if isinstance(default, tuple):
            items = value.split(",") if isinstance(value, str) else list(value)
            return tuple(type(default[0])(i) for i in items) if default else tuple(items)
        if isinstance(default, str) or kind is str:
            return str(value)
    except (TypeError, ValueError):
        raise BadInputError(f"{where} must be {type(default).__name__}, got {value!r}") from None
    return value


def settings_dict(settings) -> dict:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(settings).items()}


# -- the context -----------------------------------------------------------------------------------
class TechniqueContext:
    """What `apply` gets: the baseline (each `keras_model()` call loads a fresh copy from disk, so
    a technique can never change the baseline), the TRAINING split only, settings, seed, threads
    and `out`, an empty folder to write the artifact into."""

    def __init__(self, baseline, settings, seed: int, threads: int | None, out: Path, data_config=None):
        self.baseline = baseline  # pilotopt.export.base.Baseline
        self.settings = settings
        self.seed = seed
        self.threads = threads
        self.out = Path(out)
        self._data_config = data_config
        self._train = None

    # frameworks
    @property
    def tf(self):
        from pilotopt.frameworks import import_tf

        return import_tf(self.threads)

    def keras_model(self):
        """A fresh copy of the Keras baseline (loaded from disk, TF-MOT registries ready)."""
        self.tf  # noqa: B018 - import with our thread settings first
        import tf_keras as keras

        from pilotopt.models import register_tfmot_layers

        register_tfmot_layers()
        try:
            return keras.models.load_model(self.baseline.path, compile=False)
        except Exception as exc:
            raise BadInputError(f"cannot load Keras model '{self.baseline.path}': {type(exc).__name__}: "
                                f"{str(exc).splitlines()[0][:200] if str(exc) else ''}") from None

    @property
    def torch(self):
        from pilotopt.frameworks import import_torch

        return import_torch(self.threads)

    def torch_checkpoint(self) -> dict:
        """The PyTorch baseline checkpoint (architecture name, state dict, meta), read from disk."""
        try:
            ckpt = self.torch.load(self.baseline.path, map_location="cpu", weights_only=True)
            ckpt["model"], ckpt["state_dict"]  # noqa: B018 - both keys must be there
        except Exception as exc:
            raise BadInputError(f"cannot load PyTorch checkpoint '{self.baseline.path}': {type(exc).__name__}: "
                                f"{str(exc).splitlines()[0][:200] if str(exc) else ''}") from None
        return ckpt

    @property
    def torch_model_name(self) -> str:
        return self.torch_checkpoint()["model"]

    def torch_model(self):
        """A fresh copy of the PyTorch baseline (eval mode), built from its checkpoint on disk."""
        from pilotopt.models import build_torch

        ckpt = self.torch_checkpoint()
        net = build_torch(ckpt["model"], seed=self.seed)
        net.load_state_dict(ckpt["state_dict"])
        return net.eval()

    def save_torch_checkpoint(self, net, name: str = "model.pt", arch: str | None = None, meta: dict | None = None) -> str:
        """`net`'s weights in the baseline's checkpoint format (loadable by the `torch` runtime)."""
        ckpt = self.torch_checkpoint()
        self.torch.save({"format": "pilotopt.torch/1", "model": arch or ckpt["model"],
                         "state_dict": {k: v.detach().clone().contiguous() for k, v in net.state_dict().items()},
                         "meta": {**dict(ckpt.get("meta") or {}), **dict(meta or {})}}, self.out / name)
        return name

    def copy_baseline(self, name: str | None = None) -> str:
        """Copy the baseline file/folder into `out` unchanged; returns the artifact name."""
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
        """The training split (never validation or test)."""
        if self._train is None:
            if self._data_config is None:
                raise BadInputError("this technique needs training data; pass --data with dataset folder(s)")
            from pilotopt.data import load_splits

            split = load_splits(self._data_config).train
            if len(split) == 0:
                raise BadInputError("the training split is empty; check --data and the test circuits")
            self._train = split
        return self._train

    def train_frames(self, n: int) -> np.ndarray:
        """`n` training frames (evenly spread after a seeded shuffle) as float32 pixels 0..255."""
        split = self.train
        order = np.random.default_rng(self.seed).permutation(len(split))[: max(1, min(int(n), len(split)))]
        x, _ = split.batch(np.sort(order))
        return x.astype(np.float32)


def tree_size(path: Path) -> int:
    """Bytes of an artifact with its companion files (OpenVINO's .bin beside the .xml)."""
    from pilotopt.evaluate.size import artifact_bytes

    return artifact_bytes(path)
