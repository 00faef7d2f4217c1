"""--target edge: a folder `pilotopt_edge.Brain.load` runs on the car (NumPy + one runtime)."""

from __future__ import annotations

from pathlib import Path

from pilotopt.atomic import atomic_path
from pilotopt.deploy import register_target
from pilotopt.deploy.edge_folder import write_edge_folder


@register_target("edge", "the model, its contract and reference frames for `pilotopt-edge` on the car")
def deploy_edge(source, out: Path) -> dict:
    with atomic_path(out) as tmp:
        tmp.mkdir(parents=True)
        manifest = write_edge_folder(source, tmp)
    extra = {"litert": "litert", "onnxruntime": "onnxruntime", "openvino": "openvino"}[manifest["runtime"]]
    return {"folder": str(out), "target": "edge", "variant": source.name, "files": sorted(manifest["sha256"]) + ["deploy.json"],
            "notes": [f"on the car: pip install 'pilotopt-edge[{extra}]', then `pilotopt-edge check {out.name}`"]}
