"""The edge package's deploy folder (`pilotopt_edge.brain`'s format): the model as pilotopt ran it,
`deploy.json` with the sha256 of every file, the input contract and the tolerance, and
`reference.npz` (frames and pilotopt's commands). The edge and ros targets both write it."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from pilotopt_edge.brain import MANIFEST, REFERENCE, SCHEMA, sha256_of
from pilotopt_edge.runtimes import EXTRAS

from pilotopt.artifacts import artifact_files
from pilotopt.atomic import write_json
from pilotopt.errors import BadInputError

FLOAT_TOLERANCE = 1e-4  # m/s, rad/s: what the same float model on another machine may differ by


def edge_runtime(source) -> str:
    """The runtime the car will use, or a one-line error naming what can go instead."""
    runtime = source.runtime
    if runtime in EXTRAS:
        return runtime
    raise BadInputError(
        f"variant '{source.name}' runs on {runtime}, which has no NumPy-only runtime for the car; the edge package "
        f"runs {', '.join(sorted(EXTRAS))} models: deploy a LiteRT, ONNX or OpenVINO variant of the same run "
        "(e.g. its onnx_* or tflite_* sibling), or use --target behavior-metrics for torch models")


def tolerance_of(source) -> float:
    """1e-4 for float models; an int8 LiteRT output's quantization step in physical units when larger
    (another CPU's int8 kernels may round one step apart)."""
    if source.runtime != "litert":
        return FLOAT_TOLERANCE
    from ai_edge_litert.interpreter import Interpreter

    out = Interpreter(model_path=str(source.artifact.path)).get_output_details()[0]
    scale = float(out.get("quantization", (0.0, 0))[0] or 0.0)
    o = source.contract.outputs
    return max(FLOAT_TOLERANCE, 1.01 * scale * max(abs(o.v_scale), abs(o.w_scale)))


def write_edge_folder(source, tmp: Path) -> dict:
    """Fill `tmp` with the deploy folder; returns the manifest."""
    runtime = edge_runtime(source)
    path = Path(source.artifact.path)
    if path.is_dir():
        raise BadInputError(f"variant '{source.name}' is a folder model ({path.name}); the edge package runs single "
                            "files (.tflite, .onnx, OpenVINO .xml + .bin)")
    files = []
    for f in artifact_files(path):
        shutil.copy2(f, tmp / f.name)
        files.append(f.name)
    np.savez_compressed(tmp / REFERENCE, frames=source.frames, commands=source.commands())
    files.append(REFERENCE)
    contract = source.contract
    manifest = {
        "schema": SCHEMA, "variant": source.name, "runtime": runtime, "model": path.name,
        "sequence_length": source.sequence_length, "input_contract": contract.to_dict(),
        "clipped": bool(contract.clip), "tolerance": tolerance_of(source),
        "how_to_feed": feeding_text(contract),
        "sha256": {name: sha256_of(str(tmp / name)) for name in files},
    }
    write_json(tmp / MANIFEST, manifest)
    return manifest


def feeding_text(contract) -> list[str]:
    """The contract as steps in words, for the humans reading deploy.json."""
    g, o = contract.geometry, contract.outputs
    steps = [f"take the 640 x 480 RGB camera frame; keep rows {g.crop_top}:{g.crop_bottom}",
             f"resize to {g.height} x {g.width} (H x W), {g.interpolation} (cv2.resize(img, ({g.width}, {g.height})))"]
    if contract.channels == "bgr":
        steps.append("reorder channels to BGR")
    if contract.raw_pixels:
        steps.append("feed float32 pixel values 0..255 as they are")
    else:
        steps.append(f"x = (pixel * {contract.pixel_scale:g} - mean {list(contract.mean)}) / std {list(contract.std)}")
    steps.append(f"layout {contract.layout.upper()}, batch first")
    steps.append(f"outputs: v = {o.v_scale:g} * out[{o.v_index}] + {o.v_offset:g} m/s, "
                 f"w = {o.w_scale:g} * out[{o.w_index}] + {o.w_offset:g} rad/s, "
                 + ("clipped to " + str(contract.to_dict()["clip"]) if contract.clip else "not clipped"))
    return steps
