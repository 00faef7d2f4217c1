"""Architectures a bare state dict can be loaded into (`--arch`): every registered pilotopt model
(its PyTorch build), the architectures of other toolkits registered with `register_arch` (one
module each, with the module names those toolkits use, so their state dicts load without a key
map), and any user class given as `package.module:Class` with `--arch-args`."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable

from pilotopt.errors import BadInputError, one_line
from pilotopt.models import get_model_spec, model_names


@dataclass(frozen=True)
class Arch:
    name: str
    factory: Callable[..., Any]  # (**args) -> torch.nn.Module
    declared_shape: tuple | None  # the model's own per-sample input shape (None: not known)
    sequence_length: int = 1
    contract: str | None = None  # the input contract it is usually trained with
    description: str = ""
    args: dict = field(default_factory=dict)

    def build(self, seed: int = 0):
        import torch

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            net = self.factory(**self.args)
        return net.eval()


_ARCHS: dict[str, Arch] = {}


def register_arch(name: str, *, declared_shape: tuple | None, contract: str | None = None, sequence_length: int = 1,
                  description: str = ""):
    """Decorator on a torch.nn.Module class (or factory) that takes no required arguments."""
    def deco(factory):
        _ARCHS[name] = Arch(name, factory, declared_shape, sequence_length, contract, description)
        return factory
    return deco


def arch_names() -> list[str]:
    return sorted({*model_names(), *_ARCHS})


def resolve_arch(spec: str, args: dict | None = None) -> Arch:
    """A registered pilotopt model, a registered foreign architecture, or `package.module:Class`."""
    args = dict(args or {})
    if spec in _ARCHS:
        arch = _ARCHS[spec]
        return Arch(arch.name, arch.factory, arch.declared_shape, arch.sequence_length, arch.contract,
                    arch.description, {**arch.args, **args})
    if spec in model_names():
        if args:
            raise BadInputError(f"--arch-args does not apply to pilotopt's own model '{spec}'")
        model = get_model_spec(spec)
        return Arch(spec, lambda: model.build_torch(0), tuple(model.sample_shape), model.sequence_length, "pilotopt",
                    model.description)
    if ":" in spec:
        module, _, cls = spec.partition(":")
        try:
            factory = getattr(importlib.import_module(module), cls)
        except (ImportError, AttributeError) as exc:
            raise BadInputError(f"cannot import architecture '{spec}' ({one_line(exc)}); check the module "
                                "is on PYTHONPATH and the class name") from None
        shape = args.pop("declared_shape", None)
        try:
            factory(**args)
        except TypeError as exc:
            raise BadInputError(f"architecture '{spec}' cannot be built with --arch-args {args}: {exc}") from None
        return Arch(spec, factory, tuple(shape) if shape else None, 1, None, f"user class {spec}", args)
    raise BadInputError(f"unknown architecture '{spec}'; choose one of {', '.join(arch_names())}, "
                        "or give package.module:Class")
