"""torch.export ExportedProgram archive (.pt2)."""

from __future__ import annotations

from pathlib import Path

from pilotopt.artifacts.kind import Kind, register_kind, zip_members
from pilotopt.artifacts.tally import Tally, tally_torch_state


def detect(path: Path) -> bool:
    return any(n.endswith(("/archive_format", "/models/model.json")) for n in zip_members(path))


def count(path: Path) -> dict | None:
    import torch

    ep = torch.export.load(str(path))
    tally = tally_torch_state(dict(ep.state_dict), Tally())
    tally_torch_state({k: v for k, v in getattr(ep, "constants", {}).items() if hasattr(v, "dtype")}, tally)
    return tally.result("torch.export state dict")


def declared_input(path: Path) -> tuple | None:
    import torch

    ep = torch.export.load(str(path))
    for spec in ep.graph_signature.input_specs:
        if spec.kind.name == "USER_INPUT":
            node = next((n for n in ep.graph.nodes if n.name == spec.arg.name), None)
            val = node.meta.get("val") if node is not None else None
            if val is not None:
                return tuple(int(d) if isinstance(d, int) else None for d in val.shape[1:])
    return None


register_kind(Kind("torch_export", "torch", "torch_export", "torch.export program (.pt2)", detect, count,
                   declared_input, order=5))
