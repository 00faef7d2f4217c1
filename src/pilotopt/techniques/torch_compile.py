"""`torch_compile`: the PyTorch baseline run through torch.compile (TorchDynamo + inductor: fused,
generated C++ kernels). A compiled module cannot be serialized, so the artifact is the baseline
checkpoint copied unchanged plus `compile.json` with the options; the `torch_compile` runtime
compiles at load. The same function as the baseline, so the check tolerance is tight."""

from __future__ import annotations

import importlib.util
import json
import time
from dataclasses import dataclass

from pilotopt.runtimes.torch_compile import (BACKENDS, DYNAMIC, MODES, OPTIONS_FILE, TorchCompilePredictor,
                                             compiler_present)
from pilotopt.techniques._core import TORCH, Result, TechniqueContext, register_technique
from pilotopt.techniques._settings import Settings, setting


@dataclass(frozen=True)
class CompileSettings(Settings):
    mode: str = setting("default", "torch.compile mode", choices=MODES)
    backend: str = setting("inductor", "torch.compile backend", choices=BACKENDS)
    dynamic: str = setting("auto", "auto: specialize on the first batch size, go dynamic when it changes",
                           choices=tuple(DYNAMIC))
    freezing: bool = setting(False, "inductor freezing: fold weights into constants (inference only)")


def _available() -> tuple[bool, str]:
    """Cheap: torch is importable and a C++ compiler is on PATH (no torch import here)."""
    if importlib.util.find_spec("torch") is None:
        return False, "torch is not installed"
    return compiler_present()


@register_technique("torch_compile", framework=TORCH, runtime="torch_compile", order=190, tolerance=1e-4,
                    settings=CompileSettings, available=_available,
                    description="torch.compile (inductor) of the baseline; compiled at load by its runtime")
def apply(ctx: TechniqueContext) -> Result:
    s: CompileSettings = ctx.settings
    torch = ctx.torch

    name = ctx.copy_baseline()
    (ctx.out / OPTIONS_FILE).write_text(json.dumps({"format": "pilotopt.torch_compile/1", "mode": s.mode,
                                                    "backend": s.backend, "dynamic": s.dynamic,
                                                    "freezing": s.freezing}, indent=2) + "\n")
    t0 = time.perf_counter()
    predictor = TorchCompilePredictor(ctx.out / name, threads=ctx.threads)  # proves it compiles here
    compile_s = time.perf_counter() - t0
    return Result(name, {"model": predictor.model, "params": int(sum(p.numel() for p in predictor.eager.parameters())),
                         "compile_options": predictor.options, "options_file": OPTIONS_FILE,
                         "load_and_compile_s": round(compile_s, 3), "torch": torch.__version__})
