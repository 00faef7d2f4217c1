"""Artifacts: a model file or folder of a known kind, with the input contract that feeds it.

    from pilotopt.artifacts import open_artifact
    art = open_artifact("pilotnet.ckpt", arch="dls_pilotnet", contract="dls-torch")
    art.kind.name, art.runtime, art.params(), art.digest()

Every format pilotopt reads is one `kind_*.py` module here (see `kind.py`). The sizes and the
content digest of any artifact come from `files.py`."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from pilotopt.artifacts.files import artifact_bytes, artifact_digest, artifact_files, gzip_bytes, size_info
from pilotopt.artifacts.kind import (Artifact, Kind, detect_kind, fmt_shape, get_kind, kinds, register_kind,
                                     resolve_path)
from pilotopt.artifacts.tally import params_from_record
from pilotopt.artifacts.torch_files import is_pickle_archive, load_archive
from pilotopt.contracts import get_contract, load_contract
from pilotopt.errors import BadInputError
from pilotopt.models.arch import arch_names, resolve_arch
from pilotopt.preprocess import Geometry
from pilotopt.variants import VARIANT_FILE, read_variant

__all__ = ["Artifact", "Kind", "artifact_bytes", "artifact_digest", "artifact_files", "count_params", "detect_kind",
           "fmt_shape", "get_kind", "gzip_bytes", "kinds", "open_artifact", "params_from_record", "register_kind",
           "resolve_path", "size_info", "variant_artifact"]


def count_params(path: Path, runtime: str | None = None) -> dict | None:
    """{"params", "nonzero_params", "params_source"} read from the artifact, or None when its kind
    cannot be counted. Raises what the reading library raises."""
    path = Path(path)
    kind = detect_kind(path)
    if kind is None and path.is_dir():  # a variant folder holding one artifact
        kind = next((k for k in map(detect_kind, sorted(path.iterdir())) if k is not None), None)
        path = next((p for p in sorted(path.iterdir()) if detect_kind(p) is kind), path)
    if kind is None or kind.count is None:
        return None
    return kind.count(path)


def _unreadable(path: Path) -> BadInputError:
    if is_pickle_archive(path) and isinstance(load_archive(path), Exception):
        return BadInputError(
            f"'{path}' is a pickled PyTorch object, not weights (pilotopt does not unpickle code); save "
            "torch.save(model.state_dict(), 'model.ckpt') and pass --arch, or trace it with torch.jit")
    known = ", ".join(k.description for k in kinds().values())
    return BadInputError(f"'{path}' is not a model file pilotopt can read (known: {known}); "
                         "check the file is complete, or export the model to ONNX")


def open_artifact(path: Path | str, *, arch: str | None = None, arch_args: dict | None = None,
                  contract=None, parent: str | None = None) -> Artifact:
    """Detect the kind of `path` (a training output folder stands for its model), attach the
    architecture (weights-only kinds need one) and the input contract: the one given, checked against
    the input the model declares, or pilotopt's own adapted to that declared input, with a note of
    what was assumed. Raises BadInputError with one line naming the file and the fix."""
    path = Path(path)
    record = recorded_variant(path)
    if record is not None:  # a variant's artifact (or its folder) is opened as its variant.json says
        folder, variant = record
        path = folder / variant.artifact
        arch, arch_args = _recorded_arch(folder, variant, arch, arch_args)
        parent = parent or variant.baseline
    path = resolve_path(path)
    if not path.exists():
        raise BadInputError(f"model '{path}' does not exist; pass a model file or a training output folder")
    kind = detect_kind(path)
    if kind is None:
        raise _unreadable(path)
    spec = None
    if kind.needs_arch or arch:
        if not arch:
            raise BadInputError(f"'{path}' is a PyTorch state dict (weights only); pass --arch with its architecture: "
                                f"one of {', '.join(arch_names())}, or package.module:Class")
        spec = resolve_arch(arch, arch_args or {})
    art = Artifact(path=path, kind=kind, contract=None, arch=arch, arch_args=dict(arch_args or {}), parent=parent)
    declared = _declared(art, spec)
    sequence = int(getattr(spec, "sequence_length", 1) or 1) if spec is not None else _sequence_of(declared)
    if record is not None:
        art.contract = _recorded_contract(record, contract, declared)
        _check_declared(art, declared, sequence)
    elif contract is None:
        art.contract = _default_contract(art, spec, declared, sequence)
    else:
        art.contract = load_contract(contract).sized_to(declared)
        _check_declared(art, declared, sequence)
    art.metadata = {"declared_input": list(declared) if declared else None, "sequence_length": sequence}
    return art


def recorded_variant(path: Path):
    """(variant folder, Variant) when `path` is a variant folder or the artifact its variant.json
    names, else None: the record, not a guess, says which contract and architecture feed it."""
    path = Path(path)
    if path.is_dir() and (path / VARIANT_FILE).is_file():
        variant = read_variant(path)
        if variant.status != "ok" or not variant.artifact:
            why = f": {variant.reason}" if variant.reason else ""
            raise BadInputError(f"variant '{variant.name}' in '{path}' is {variant.status}{why}; it holds no model "
                                "to open, pick an ok variant")
        return path, variant
    folder = path.parent
    if not (folder / VARIANT_FILE).is_file():
        return None
    variant = read_variant(folder)
    if not variant.artifact or variant.status != "ok":
        return None
    own = folder / variant.artifact
    same = own.resolve() == path.resolve() or resolve_path(own).resolve() == resolve_path(path).resolve()
    return (folder, variant) if same else None


def _recorded_arch(folder: Path, variant, arch, arch_args):
    """The architecture variant.json records; one given as well must be the same."""
    where = folder / "variant.json"
    if arch and variant.arch and arch != variant.arch:
        raise BadInputError(f"--arch {arch} contradicts '{where}', which records architecture '{variant.arch}'; "
                            "drop --arch (the record is used)")
    if arch_args and variant.arch_args and dict(arch_args) != dict(variant.arch_args):
        raise BadInputError(f"--arch-args {arch_args} contradict '{where}', which records {variant.arch_args}; "
                            "drop --arch-args (the record is used)")
    return arch or variant.arch, dict(arch_args or variant.arch_args or {})


def _recorded_contract(record, given, declared):
    """The contract variant.json records (sized to the model); one given as well must feed the model
    the same way, else a one-line error naming both."""
    folder, variant = record
    recorded = load_contract(variant.contract).sized_to(declared)
    where = folder / "variant.json"
    if given is None:
        return dataclasses.replace(recorded, notes=(f"'{recorded.name}' as recorded in {where} "
                                                    f"({recorded.summary()})",))
    wanted = load_contract(given).sized_to(declared)
    if wanted.digest != recorded.digest:
        raise BadInputError(f"--input '{wanted.name}' contradicts '{where}', which records input contract "
                            f"'{recorded.name}' for this model; drop --input (the record is used) or make the "
                            "variant again from a model of that contract")
    return wanted


def _declared(art: Artifact, spec) -> tuple | None:
    if spec is not None:
        return tuple(spec.declared_shape)
    try:
        return art.declared_input()
    except Exception:  # noqa: BLE001 - reading the declared input is informative; loading reports errors
        return None


def _sequence_of(declared: tuple | None) -> int:
    return int(declared[0] or 1) if declared is not None and len(declared) == 4 else 1


def _default_contract(art: Artifact, spec, declared, sequence: int):
    """pilotopt's own contract, or the architecture's preset, adapted to the declared input."""
    name = getattr(spec, "contract", None) or "pilotopt"
    base = get_contract(name).sized_to(declared)
    if _trained_here(art.path):  # pilotopt's own training output: fed as it was trained, nothing assumed
        return base
    source = f"architecture {art.arch}'s" if spec is not None else "the default"
    fix = "pass --input PRESET|FILE.yaml if it was trained otherwise"
    if declared is None or len(declared) < 3:
        return base.with_notes(f"assumed {source} '{name}' contract ({base.summary()}): the model declares no "
                               f"input shape; {fix}")
    frame = declared[-3:]
    if base.sample_shape(sequence) == tuple(declared) or _matches(base.sample_shape(sequence), declared):
        return base.with_notes(f"assumed {source} '{name}' contract ({base.summary()}), which fits the input the "
                               f"model declares; {fix}")
    if frame[0] == 3 and frame[-1] != 3:
        layout, h, w = "nchw", frame[1], frame[2]
    else:
        layout, h, w = "nhwc", frame[0], frame[1]
    if h is None or w is None:
        return base.with_notes(f"assumed the '{name}' contract: the model's input size is dynamic")
    g = base.geometry
    adapted = dataclasses.replace(base, name=f"{name}+detected", layout=layout,
                                  geometry=Geometry(g.crop_top, g.crop_bottom, int(h), int(w), g.interpolation))
    return adapted.with_notes(
        f"detected {layout.upper()} input {int(h)}x{int(w)} from the model; assumed the rest of the '{name}' contract "
        f"(rows {g.crop_top}:{g.crop_bottom}, {base.channels.upper()}, values as '{name}', outputs normalized by "
        "pilotopt's bounds); pass --input PRESET|FILE.yaml if the model was trained otherwise")


def _trained_here(path: Path) -> bool:
    """Whether `path` is a model that `pilotopt train` saved (its metrics.json names it)."""
    import json

    metrics = path.parent / "metrics.json"
    try:
        doc = json.loads(metrics.read_text()) if metrics.is_file() else {}
    except (OSError, ValueError):
        return False
    return isinstance(doc, dict) and path.name in (doc.get("artifacts") or []) and "model" in doc


def _matches(expected: tuple, declared: tuple) -> bool:
    return len(expected) == len(declared) and all(d is None or d == e for e, d in zip(expected, declared))


def _check_declared(art: Artifact, declared, sequence: int) -> None:
    if declared is None:
        return
    expected = art.contract.sample_shape(sequence)
    if _matches(expected, tuple(declared)):
        return
    if art.kind.framework == "tf" and len(declared) == 3 and tuple(declared[:2])[::-1] == expected[:2]:
        art.contract = art.contract.with_notes(
            f"the model declares input {tuple(declared)} but is fed {expected} by contract '{art.contract.name}': "
            "its input is re-declared to the contract's size when it is loaded (same weights)")
        return
    raise BadInputError(f"model '{art.path}' declares input {fmt_shape((None, *declared))}{_layout_of(declared)} but "
                        f"input contract '{art.contract.name}' feeds {fmt_shape((None, *expected))} "
                        f"({art.contract.layout.upper()}); pass --input with a matching preset (see `pilotopt list "
                        "contracts`) or a YAML file")


def _layout_of(shape) -> str:
    """' (NHWC)' / ' (NCHW)' when the channels' place in a declared per-sample shape says which."""
    frame = tuple(shape)[-3:]
    if len(frame) < 3 or (frame[0] == 3) == (frame[-1] == 3):
        return ""
    return " (NCHW)" if frame[0] == 3 else " (NHWC)"


def variant_artifact(folder: Path | str, variant) -> Artifact:
    """A variant's artifact (`variant` a pilotopt.variants.Variant) with its contract and architecture."""
    return open_artifact(Path(folder) / variant.artifact, arch=variant.arch, arch_args=variant.arch_args or None,
                         contract=variant.contract, parent=variant.baseline)
