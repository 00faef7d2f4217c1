"""The recommended variant written in a form its user's own tools load, with its input contract.

A DeepLearningStudio / Behavior Metrics user deploys with their toolkit, not with pilotopt: the
variant's artifact is copied as produced (a float-in/float-out .tflite or a Keras model for a TF
model, an NCHW ONNX or TorchScript for a torch model: variants keep the input model's own layout),
a pilotopt checkpoint of a registered architecture also as the plain `state_dict` that
`model.load_state_dict(torch.load(...))` takes, and `input_contract.json` beside it says how to feed
it (crop, size, channels, layout, scaling) and how to read its outputs (v, w in physical units)."""

from __future__ import annotations

import shutil
from pathlib import Path

from pilotopt.atomic import atomic_path, write_json

CONTRACT_FILE = "input_contract.json"


def feeding_text(contract) -> list[str]:
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
                 f"w = {o.w_scale:g} * out[{o.w_index}] + {o.w_offset:g} rad/s")
    return steps


def write_deployable(artifact: Path, dest: Path, *, variant: str, contract=None, arch: str | None = None,
                     arch_args: dict | None = None) -> dict:
    """Copy `artifact` (with its companion files) into `dest` with input_contract.json; returns what was written."""
    from pilotopt.artifacts import artifact_files, detect_kind
    from pilotopt.contracts import load_contract

    artifact = Path(artifact)
    contract = load_contract(contract)
    kind = detect_kind(artifact)
    written = []
    with atomic_path(dest) as tmp:
        tmp.mkdir(parents=True)
        if artifact.is_dir():
            shutil.copytree(artifact, tmp / artifact.name)
            written.append(artifact.name)
        else:
            for f in artifact_files(artifact):
                shutil.copy2(f, tmp / f.name)
                written.append(f.name)
        state_dict = None
        if kind is not None and kind.name == "torch_checkpoint":
            state_dict = _plain_state_dict(artifact, tmp / "state_dict.pth")
            written.append(state_dict)
        doc = {"schema": "pilotopt.deploy/1", "variant": variant, "artifact": artifact.name,
               "kind": kind.name if kind else None, "runtime": kind.runtime if kind else None, "arch": arch,
               "arch_args": dict(arch_args or {}), "state_dict": state_dict, "input_contract": contract.to_dict(),
               "how_to_feed": feeding_text(contract)}
        if kind is not None and kind.name == "tflite":
            doc["tflite_io"] = _tflite_io(artifact)
        write_json(tmp / CONTRACT_FILE, doc)
        written.append(CONTRACT_FILE)
    return {"folder": str(dest), "files": written}


def _plain_state_dict(checkpoint: Path, dest: Path) -> str:
    """The weights of a pilotopt checkpoint as a bare state dict (what DLS and Behavior Metrics load)."""
    import torch

    torch.save(torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"], dest)
    return dest.name


def _tflite_io(path: Path) -> dict:
    """Input / output types of a .tflite, with the quantization an int8 model needs applied around it."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path), num_threads=1)

    def io(d):
        scale, zero = d.get("quantization", (0.0, 0))
        return {"dtype": str(d["dtype"].__name__), "shape": [int(s) for s in d["shape"]],
                "scale": float(scale), "zero_point": int(zero)}

    return {"input": io(interp.get_input_details()[0]), "output": io(interp.get_output_details()[0]),
            "note": "int8 tensors: q = x / scale + zero_point in, x = (q - zero_point) * scale out"}
