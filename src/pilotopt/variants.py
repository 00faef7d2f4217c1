"""The on-disk contract between the stages that make model variants (export, optimization
techniques) and the stages that measure them (offline evaluation, closed loop, report):

    ARTIFACTS/<variant name>/variant.json   status, runtime, the artifact's file name, provenance
    ARTIFACTS/<variant name>/<artifact>     the deployable file or folder

A variant folder is written atomically, so a folder with a variant.json is always complete."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pilotopt.atomic import write_json
from pilotopt.errors import BadInputError

VARIANT_SCHEMA = "pilotopt.variant/1"
VARIANT_FILE = "variant.json"
STATUSES = ("ok", "failed", "skipped")


@dataclass
class Variant:
    name: str  # unique within an artifacts folder, e.g. "tflite_int8", "onnx_fp32"
    runtime: str  # the predictor that runs it (see pilotopt.runtimes), e.g. "litert", "onnxruntime"
    artifact: str | None  # file or folder name inside the variant folder (None if not produced)
    framework: str  # "tf" or "torch": which trained baseline it derives from
    technique: str = ""  # the technique that produced it ("" for a plain export)
    baseline: str | None = None  # variant name whose outputs this one is cross-checked against
    status: str = "ok"
    reason: str | None = None  # why failed / skipped
    record: dict = field(default_factory=dict)  # settings, duration, sparsity, ...
    contract: dict | None = None  # the input contract that feeds it (pilotopt.contracts; None: pilotopt's own)
    arch: str | None = None  # architecture of a weights-only artifact (a state dict)
    arch_args: dict = field(default_factory=dict)
    steps: list = field(default_factory=list)  # the techniques that made it, in order (a chain: several)
    parent: str | None = None  # a chain's: the folder (relative to the artifacts folder) its last step started from

    def to_json(self) -> dict:
        return {"schema": VARIANT_SCHEMA, **asdict(self)}


def write_variant(folder: Path | str, variant: Variant) -> Path:
    """Write variant.json into `folder` (create the folder first, with the artifact inside)."""
    if variant.status not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}")
    path = Path(folder) / VARIANT_FILE
    write_json(path, variant.to_json())
    return path


def read_variant(folder: Path | str) -> Variant:
    path = Path(folder) / VARIANT_FILE
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise BadInputError(f"'{folder}' has no {VARIANT_FILE}; it is not a pilotopt variant folder") from None
    except ValueError:
        raise BadInputError(f"'{path}' is not valid JSON; regenerate the variant") from None
    doc.pop("schema", None)
    try:
        return Variant(**doc)
    except TypeError as exc:
        raise BadInputError(f"'{path}' does not describe a variant ({exc}); regenerate it") from None


def read_variants(artifacts: Path | str) -> list[tuple[Path, Variant]]:
    """Every variant folder under `artifacts`, sorted by name."""
    root = Path(artifacts)
    if not root.is_dir():
        raise BadInputError(f"artifacts folder '{root}' does not exist; run `pilotopt optimize` or export first")
    found = [(p, read_variant(p)) for p in sorted(root.iterdir()) if (p / VARIANT_FILE).is_file()]
    if not found:
        raise BadInputError(f"no variants (folders with {VARIANT_FILE}) in '{root}'")
    return found
