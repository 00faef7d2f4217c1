"""torch.compile predictor: our PyTorch checkpoint (loaded by the `torch` runtime) run through
torch.compile. A compiled module cannot be saved, so the artifact is the plain checkpoint and the
compile options come from `compile.json` beside it (written by the torch_compile technique; absent:
torch's defaults). Selected only by name: a checkpoint alone is detected as `torch`.

Loading compiles once on a one-sample batch, so a broken toolchain (inductor needs a C++ compiler)
fails at load with one line instead of at the first timed call; a new batch size recompiles once
(that is the harness's warm-up)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from pilotopt.errors import BadInputError, RuntimeUnavailable, one_line
from pilotopt.models import get_model_spec
from pilotopt.runtimes import register_runtime
from pilotopt.runtimes.torch_eager import TorchPredictor

OPTIONS_FILE = "compile.json"
MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
BACKENDS = ("inductor", "aot_eager", "eager")
DYNAMIC = {"auto": None, "true": True, "false": False}  # auto: static first, dynamic after a new shape


def compiler_present() -> tuple[bool, str]:
    """inductor's CPU backend writes C++ and builds it; without a compiler torch.compile fails."""
    import os

    for cc in (os.environ.get("CXX"), "c++", "g++", "clang++"):
        if cc and shutil.which(cc):
            return True, ""
    return False, "torch.compile (inductor) needs a C++ compiler: install g++ (apt-get install g++)"


def read_options(path: Path) -> dict:
    """Compile options from compile.json beside the checkpoint, checked; defaults without one."""
    opts = {"mode": "default", "backend": "inductor", "dynamic": "auto", "freezing": False}
    file = Path(path).parent / OPTIONS_FILE
    if file.is_file():
        try:
            given = json.loads(file.read_text())
        except ValueError:
            raise BadInputError(f"'{file}' is not valid JSON; rerun the torch_compile technique") from None
        if not isinstance(given, dict):
            raise BadInputError(f"'{file}' must hold an object of compile options")
        opts.update({k: given[k] for k in opts if k in given})
    if opts["mode"] not in MODES:
        raise BadInputError(f"compile mode must be one of {', '.join(MODES)}, got {opts['mode']!r} ({file})")
    if opts["backend"] not in BACKENDS:
        raise BadInputError(f"compile backend must be one of {', '.join(BACKENDS)}, got {opts['backend']!r} ({file})")
    if str(opts["dynamic"]).lower() not in DYNAMIC:
        raise BadInputError(f"compile dynamic must be one of {', '.join(DYNAMIC)}, got {opts['dynamic']!r} ({file})")
    opts["dynamic"] = str(opts["dynamic"]).lower()
    opts["freezing"] = bool(opts["freezing"])
    return opts


@register_runtime("torch_compile")
class TorchCompilePredictor(TorchPredictor):
    runtime = "torch_compile"

    def __init__(self, path: Path, threads: int | None = None, **_):
        path = Path(path)
        self.options = read_options(path)
        if self.options["backend"] == "inductor":
            ok, why = compiler_present()
            if not ok:
                raise RuntimeUnavailable(why)
        super().__init__(path, threads)  # loads and checks the checkpoint
        torch = self.torch

        kwargs = {"backend": self.options["backend"], "dynamic": DYNAMIC[self.options["dynamic"]],
                  "mode": self.options["mode"]}
        if self.options["freezing"] and self.options["backend"] == "inductor":
            # weights folded into constants (inference only); per module, not the global config.
            # torch.compile takes mode or options, not both: spell the mode out as its options
            import torch._inductor

            kwargs["options"] = {**torch._inductor.list_mode_options(kwargs.pop("mode")), "freezing": True}
        self.eager = self.net
        self.net = torch.compile(self.eager, **kwargs)
        try:
            self.predict(np.zeros(get_model_spec(self.model).batch_shape(1), np.float32))  # compile now
        except Exception as exc:
            raise RuntimeUnavailable(f"torch.compile ({self.options['backend']}, mode {self.options['mode']}) "
                                     f"failed for '{path}': {one_line(exc)}; run it with the 'torch' "
                                     "runtime instead") from None

    def describe(self) -> dict:
        return {**super().describe(), "compile": dict(self.options)}
