"""torch.export ExportedProgram archive (.pt2)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from pilotopt.artifacts.kind import Kind, register_kind, zip_members
from pilotopt.artifacts.tally import Tally, tally_torch_state
from pilotopt.frameworks import quiet_loggers


def detect(path: Path) -> bool:
    return any(n.endswith(("/archive_format", "/models/model.json")) for n in zip_members(path))


def register_quant_ops() -> None:
    """Int8 programs from PT2E call torch.ops.quantized_decomposed.*, which torch defines only once
    its decomposed-quantization library is imported (torchao does that); without it they fail to
    deserialize. The import is cheap and needs no torchao."""
    try:
        import torch.ao.quantization.fx._decomposed  # noqa: F401
    except Exception:  # noqa: BLE001 - a torch without it: plain programs still load
        pass


def load_program(path: Path):
    """The ExportedProgram in `path` (quantized ones included), without torch's logged tracebacks."""
    import torch

    register_quant_ops()
    with quiet_loggers("torch.export", "torch._export"):  # torch logs a traceback before raising
        return torch.export.load(str(path))


def input_shape(program) -> tuple[int | None, ...]:
    """The first user input's shape, symbolic sizes (the dynamic batch) -> None."""
    name = program.graph_signature.user_inputs[0]
    for node in program.graph.nodes:
        if node.op == "placeholder" and node.name == name:
            val = node.meta.get("val")
            if val is None:
                break
            return tuple(d if isinstance(d, int) else None for d in tuple(val.shape))
    return ()


def count(path: Path) -> dict | None:
    ep = load_program(path)
    tally = tally_torch_state(dict(ep.state_dict), Tally())
    tally_torch_state({k: v for k, v in getattr(ep, "constants", {}).items() if hasattr(v, "dtype")}, tally)
    return tally.result("torch.export state dict")


def archived_input_shape(path: Path) -> tuple[int | None, ...] | None:
    """The first user input's shape read from the archive's serialized graph (models/*.json), without
    deserializing the program (1-2 s for an int8 one, which the runtime then loads again); None
    when the archive does not hold it in the layout torch writes, and the program is loaded."""
    try:
        with zipfile.ZipFile(path) as z:
            name = next(n for n in z.namelist() if n.endswith("/models/model.json"))
            module = json.loads(z.read(name))["graph_module"]
        spec = next(s["user_input"]["arg"]["as_tensor"]["name"] for s in module["signature"]["input_specs"]
                    if "user_input" in s)
        sizes = module["graph"]["tensor_values"][spec]["sizes"]
        return tuple(d["as_int"] if "as_int" in d else None for d in sizes)
    except (OSError, ValueError, KeyError, TypeError, StopIteration, zipfile.BadZipFile):
        return None


def declared_input(path: Path) -> tuple | None:
    shape = archived_input_shape(path)
    if shape is None:
        shape = input_shape(load_program(path))
    return tuple(shape[1:]) if shape else None


register_kind(Kind("torch_export", "torch", "torch_export", "torch.export program (.pt2)", detect, count,
                   declared_input, order=5))
