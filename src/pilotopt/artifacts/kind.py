"""The artifact kinds registry and the Artifact type.

A kind is one module `kind_*.py` in this package that calls `register_kind(Kind(...))`: how to tell
a file of that kind *by its content*, which files belong to it, how many (non-zero) parameters it
holds, what input it declares, and which runtime runs it. Nothing else in pilotopt knows file
formats, so adding a runtime is one runtime module plus one kind module."""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from pilotopt.artifacts.files import artifact_digest, artifact_files
from pilotopt.errors import BadInputError


@dataclass(frozen=True)
class Kind:
    name: str
    framework: str  # "torch", "tf" or "portable"
    runtime: str  # the predictor that runs it (pilotopt.runtimes)
    description: str
    detect: Callable[[Path], bool]
    count: Callable[[Path], dict | None] | None = None
    declared_input: Callable[[Path], tuple | None] | None = None  # per-sample shape the model declares
    needs_arch: bool = False  # weights only: the architecture comes from --arch
    trainable: bool = False  # a framework model a technique can fine-tune or convert from
    order: int = 100


_KINDS: dict[str, Kind] = {}


def fmt_shape(shape) -> str:
    """A batch shape for a message: (N, 66, 200, 3), `?` for a dynamic size."""
    return "(" + ", ".join("N" if i == 0 else ("?" if d is None else str(d)) for i, d in enumerate(shape)) + ")"


def register_kind(kind: Kind) -> Kind:
    _KINDS[kind.name] = kind
    return kind


def _load_all() -> None:
    import importlib
    import pkgutil

    import pilotopt.artifacts as pkg  # the kind modules, found on demand (each imports this module)

    for mod in pkgutil.iter_modules(pkg.__path__):
        if mod.name.startswith("kind_"):
            importlib.import_module(f"{pkg.__name__}.{mod.name}")


def kinds() -> dict[str, Kind]:
    _load_all()
    return dict(sorted(_KINDS.items(), key=lambda kv: (kv[1].order, kv[0])))


def get_kind(name: str) -> Kind:
    known = kinds()
    if name not in known:
        raise BadInputError(f"unknown artifact kind '{name}'; known: {', '.join(known)}")
    return known[name]


def detect_kind(path: Path) -> Kind | None:
    """The first kind whose content test accepts `path` (None if none does)."""
    path = Path(path)
    for kind in kinds().values():
        try:
            if kind.detect(path):
                return kind
        except (OSError, ValueError):
            continue
    return None


def kind_of_runtime(runtime: str) -> list[Kind]:
    return [k for k in kinds().values() if k.runtime == runtime]


# -- content probes shared by the kinds ------------------------------------------------------------
def zip_members(path: Path) -> list[str]:
    """Member names of a zip archive (torch.save, TorchScript, .pt2, .keras), [] if not a zip."""
    if not path.is_file() or not zipfile.is_zipfile(path):
        return []
    try:
        with zipfile.ZipFile(path) as z:
            return z.namelist()
    except (zipfile.BadZipFile, OSError):
        return []


def head(path: Path, n: int = 16) -> bytes:
    if not path.is_file():
        return b""
    with open(path, "rb") as f:
        return f.read(n)


# -- the artifact ----------------------------------------------------------------------------------
@dataclass
class Artifact:
    """A model file or folder of a known kind, with the input contract it is fed by."""

    path: Path
    kind: Kind
    contract: "object"  # pilotopt.contracts.InputContract
    arch: str | None = None  # architecture of a weights-only kind, or the one a checkpoint names
    arch_args: dict = field(default_factory=dict)
    metadata: dict = field(default_factory=dict)
    parent: str | None = None  # the variant or file it was made from

    @property
    def framework(self) -> str:
        return self.kind.framework

    @property
    def runtime(self) -> str:
        return self.kind.runtime

    def files(self) -> list[Path]:
        return artifact_files(self.path)

    def digest(self) -> str:
        return artifact_digest(self.path)

    def params(self) -> dict | None:
        return self.kind.count(self.path) if self.kind.count else None

    def declared_input(self) -> tuple | None:
        return self.kind.declared_input(self.path) if self.kind.declared_input else None

    def describe(self) -> dict:
        return {"path": str(self.path), "kind": self.kind.name, "framework": self.framework, "runtime": self.runtime,
                "arch": self.arch, "arch_args": dict(self.arch_args), "input_contract": self.contract.to_dict(),
                "parent": self.parent}


def resolve_path(path: Path) -> Path:
    """A training output folder stands for the model it holds (metrics.json names it), and the
    weights half of an OpenVINO IR (model.bin) for the model.xml beside it."""
    if path.suffix.lower() == ".bin" and path.with_suffix(".xml").is_file():
        return path.with_suffix(".xml")
    metrics = path / "metrics.json"
    if path.is_dir() and metrics.is_file():
        try:
            arts = json.loads(metrics.read_text()).get("artifacts") or []
        except ValueError:
            raise BadInputError(f"'{metrics}' is not valid JSON; retrain or pass the model file itself") from None
        if arts:
            return path / arts[0]
    return path
