"""--target behavior-metrics: a tree that mirrors Behavior Metrics' `behavior_metrics/` folder, so a
BM user copies it over their checkout and runs `python driver.py -c configs/gazebo/pilotopt-NAME.yml`
with zero code changes. BM's brains feed models their own way (bm_brains), so the export folds
that feeding into the model: a `.tflite` whose first ops undo albumentations' Normalize() (and
whose last ops map the outputs to the brain's own formula), a TorchScript that takes ToTensor's
NCHW 0..1. Every exported model is fed the reference frames the brain's way at deploy time and
must give pilotopt's commands within 1e-4, or deploy stops and says so."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pilotopt.artifacts.kind_torch_export import load_program
from pilotopt.atomic import atomic_path, write_json
from pilotopt.contracts.contract import IMAGENET_MEAN, IMAGENET_STD
from pilotopt.contracts.contract import IMAGENET_MEAN, IMAGENET_STD
from pilotopt.deploy import register_target
from pilotopt.deploy.bm_brains import BRAINS, config_yaml
from pilotopt.deploy.source import commands_of
from pilotopt.deploy.tflite_edit import add_affine
from pilotopt.deploy.torchscript_export import bm_torchscript, to_core_ops
from pilotopt.errors import BadInputError
from pilotopt.runtimes import contract_predictor
from pilotopt.runtimes.torch_eager import load_torch_module
MATCH = 1e-4  # m/s, rad/s between BM's commands and pilotopt's on the reference frames
TIME_CYCLE_MS = 50  # BM's PilotTimeCycle in its shipped configs
WORLD = "/opt/jderobot/share/jderobot/gazebo/launch/simple_circuit.launch"
TF_KINDS = ("tflite",)
TORCH_KINDS = ("torch_checkpoint", "torch_state_dict", "torchscript", "torch_export", "executorch")
from pilotopt.techniques._pt2e import QDQ_PROGRAM  # the int8 program a .pte was lowered from


def _expressible(source) -> None:
    c = source.contract
    if source.sequence_length > 1:
        raise BadInputError(f"variant '{source.name}' is recurrent (T={source.sequence_length}); Behavior Metrics' "
                            "F1 brains feed one frame, use its brain_f1_torch-lstm with the model as trained")
    if c.layout == "nchw" and source.artifact.kind.name in TF_KINDS or c.channels != "rgb":
        raise BadInputError(f"variant '{source.name}' takes {c.channels.upper()} {c.layout.upper()} input, which a "
                            "Behavior Metrics TF brain cannot feed; deploy it with --target edge")
    if c.outputs.v_index != 0:
        raise BadInputError(f"variant '{source.name}' outputs (w, v); Behavior Metrics reads (v, w): deploy with "
                            "--target edge")


# -- TF: one .tflite per brain, BM's Normalize() undone and its output formula folded in -------------
def _tflite_for(source, brain) -> bytes:
    c = source.contract
    std = np.asarray(IMAGENET_STD, np.float64)  # albumentations Normalize(), which BM's TF brains apply
    mean = np.asarray(IMAGENET_MEAN, np.float64)
    then_scale = then_offset = None
    if not c.raw_pixels:
        then_scale = [c.pixel_scale / s for s in c.std]
        then_offset = [-m / s for m, s in zip(c.mean, c.std)]
    o = c.outputs
    (av, bv), (aw, bw) = brain.v_map, brain.w_map
    out_scale = [o.v_scale / av, o.w_scale / aw]
    out_offset = [(o.v_offset - bv) / av, (o.w_offset - bw) / aw]
    identity = np.allclose(out_scale, 1.0, atol=0, rtol=1e-12) and np.allclose(out_offset, 0.0, atol=1e-12)
    return add_affine(Path(source.artifact.path).read_bytes(), list(255.0 * std), list(255.0 * mean), round_input=True,
                      then_scale=then_scale, then_offset=then_offset,
                      out_scale=None if identity else out_scale, out_offset=None if identity else out_offset)


def _run_tflite(path: Path, brain, frames: np.ndarray) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(path))
    it.allocate_tensors()
    i, o = it.get_input_details()[0]["index"], it.get_output_details()[0]["index"]
    out = []
    for f in frames:
        it.set_tensor(i, brain.feed(f))
        it.invoke()
        out.append(brain.commands(it.get_tensor(o)))
    return np.asarray(out, np.float64)


# -- torch: one TorchScript taking ToTensor's NCHW 0..1 ---------------------------------------------
def _torch_module(source):
    """(module taking the contract's input, the commands pilotopt computes for that very module,
    a note) for a torch-family variant."""
    art = source.artifact
    kind = art.kind.name
    if kind in ("torch_checkpoint", "torch_state_dict"):
        return load_torch_module(art.path, art.arch, art.arch_args)[0], source.commands(), None
    if kind == "torchscript":
        import torch

        return torch.jit.load(str(art.path), map_location="cpu").eval(), source.commands(), None
    program = art.path if kind == "torch_export" else Path(art.path).with_name(QDQ_PROGRAM)
    if not program.is_file():
        raise BadInputError(f"variant '{source.name}' is an ExecuTorch program without its int8 q/dq program "
                            f"({QDQ_PROGRAM}); rerun `pilotopt optimize` for it (this version saves both), "
                            "or deploy it with --target edge through an ONNX sibling")

    module = to_core_ops(load_program(program).module())
    ref = commands_of(contract_predictor(program, "torch_export", source.threads, source.contract), source.frames)
    note = None
    if kind == "executorch":
        gap = float(np.abs(ref - source.commands()).max())
        note = (f"{source.name}: the .pte's int8 model replayed in reference q/dq arithmetic (same int8 weights and "
                f"scales); it differs from the XNNPACK .pte by at most {gap:.3g} on the reference frames")
    return module, ref, note


def _run_torchscript(path: Path, brain, frames: np.ndarray) -> np.ndarray:
    import torch

    net = torch.jit.load(str(path), map_location="cpu")  # as BM does: no .eval()
    with torch.no_grad():
        return np.asarray([brain.commands(net(torch.from_numpy(brain.feed(f))).numpy()) for f in frames], np.float64)


def _checked(name: str, got: np.ndarray, want: np.ndarray) -> float:
    gap = float(np.abs(got - want).max())
    if not gap <= MATCH:
        raise BadInputError(f"the Behavior Metrics export {name} gives commands {gap:.3g} away from pilotopt's on the "
                            f"reference frames (limit {MATCH:g}); this variant cannot be folded for BM, use --target edge")
    return gap


@register_target("behavior-metrics", "a tree to copy over Behavior Metrics' behavior_metrics/ folder: models and "
                                     "configs/gazebo/pilotopt-NAME.yml for its unmodified F1 brains")
def deploy_behavior_metrics(source, out: Path) -> dict:
    import yaml

    kind = source.artifact.kind.name
    if kind not in TF_KINDS + TORCH_KINDS:
        raise BadInputError(f"variant '{source.name}' is a {kind} model; Behavior Metrics' F1 brains load .tflite "
                            "and TorchScript only: deploy a tflite_* or torch variant, or this one with --target edge")
    _expressible(source)
    name = source.name
    forms, notes = [], []
    with atomic_path(out) as tmp:
        tmp.mkdir(parents=True)
        if kind in TF_KINDS:
            for key in ("keras_opencv_dataset", "keras"):
                brain = BRAINS[key]
                rel = f"pilotopt/{name}.tflite" if key == "keras_opencv_dataset" else f"pilotopt/{name}.keras-brain.tflite"
                dest = tmp / brain.models_dir / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(_tflite_for(source, brain))
                gap = _checked(rel, _run_tflite(dest, brain, source.frames), source.commands())
                cfg = f"pilotopt-{name}.yml" if key == "keras_opencv_dataset" else f"pilotopt-{name}-keras.yml"
                forms.append({"brain": brain.brain_path, "model": f"{brain.models_dir}/{rel}",
                              "config": f"configs/gazebo/{cfg}", "max_abs_diff": gap})
        else:
            import torch

            brain = BRAINS["torch"]
            module, want, note = _torch_module(source)
            rel = f"pilotopt_{name}.pt"
            dest = tmp / brain.models_dir / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            torch.jit.save(bm_torchscript(module, source.contract), str(dest))
            gap = _checked(rel, _run_torchscript(dest, brain, source.frames), want)
            if note:
                notes.append(note)
            forms.append({"brain": brain.brain_path, "model": f"{brain.models_dir}/{rel}",
                          "config": f"configs/gazebo/pilotopt-{name}.yml", "max_abs_diff": gap})
        for form in forms:
            brain = next(b for b in BRAINS.values() if b.brain_path == form["brain"])
            model_rel = form["model"][len(brain.models_dir) + 1:]
            cfg = tmp / form["config"]
            cfg.parent.mkdir(parents=True, exist_ok=True)
            cfg.write_text(yaml.safe_dump(config_yaml(brain, model_rel, TIME_CYCLE_MS, WORLD), sort_keys=False))
        meta = tmp / "pilotopt" / name
        meta.mkdir(parents=True)
        np.savez_compressed(meta / "reference.npz", frames=source.frames, commands=source.commands())
        write_json(meta / "deploy.json", {"schema": "pilotopt.deploy-bm/1", "variant": name, "forms": forms,
                                          "notes": notes, "input_contract": source.contract.to_dict(),
                                          "match_limit": MATCH})
    notes = [f"copy over behavior_metrics/ and run: python driver.py -c {f['config']}" for f in forms] + notes
    return {"folder": str(out), "target": "behavior-metrics", "variant": name,
            "files": [f["model"] for f in forms] + [f["config"] for f in forms], "notes": notes}
