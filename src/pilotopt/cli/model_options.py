"""The options every command that takes a user's model shares: --arch, --arch-args, --input."""

from __future__ import annotations

import json
from typing import Optional

import typer

from pilotopt.artifacts import open_artifact
from pilotopt.errors import BadInputError

ARCH_HELP = ("Architecture of a bare PyTorch state dict: a registered name (dls_pilotnet, "
             "dls_deepest_lstm_tinypilotnet, pilotnet, ...) or package.module:Class.")
ARCH_ARGS_HELP = "Constructor arguments for --arch: JSON ('{\"outputs\": 2}') or key=value,key=value."
INPUT_HELP = ("Input contract: a preset (pilotopt, dls-torch, dls-tf, dls-tf-cropped, bm-torch-legacy; see "
              "`pilotopt list contracts`) or a YAML file. Default: pilotopt's own, adapted to the input the model declares.")

ArchOption = typer.Option(None, "--arch", help=ARCH_HELP)
ArchArgsOption = typer.Option(None, "--arch-args", help=ARCH_ARGS_HELP)
InputOption = typer.Option(None, "--input", help=INPUT_HELP)


def parse_arch_args(text: Optional[str]) -> dict | None:
    if not text:
        return None
    text = text.strip()
    if text.startswith("{"):
        try:
            doc = json.loads(text)
        except ValueError as exc:
            raise BadInputError(f"--arch-args is not valid JSON ({exc}); e.g. --arch-args '{{\"outputs\": 2}}'") from None
        if not isinstance(doc, dict):
            raise BadInputError("--arch-args must be a JSON object")
        return doc
    out = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise BadInputError(f"--arch-args '{item}' must look like key=value")
        try:
            out[key.strip()] = json.loads(value)
        except ValueError:
            out[key.strip()] = value.strip()
    return out


def open_model(model, arch: Optional[str], arch_args: Optional[str], input_: Optional[str], say=None):
    """The user's model as an Artifact, saying what was detected or assumed about its input."""
    art = open_artifact(model, arch=arch, arch_args=parse_arch_args(arch_args), contract=input_)
    for note in art.contract.notes:
        (say or (lambda m: typer.echo(m, err=True)))(f"input contract: {note}")
    return art


OUT_OF_RANGE = 0.5  # share of outputs outside [0, 1] above which something is wrong


def warn_out_of_range(share: float, contract_name: str, what: str = "the model's outputs",
                      parent: tuple[str, float] | None = None) -> None:
    """Warn when most outputs leave [0, 1]. `parent`: (name, share) of the model it was made from,
    fed by the same contract: when that one stays in range the contract is right and the variant broken."""
    if share <= OUT_OF_RANGE:
        return
    if parent is not None and parent[1] is not None and parent[1] <= OUT_OF_RANGE:
        typer.echo(f"warning: {share:.0%} of {what} fall outside the normalized [0, 1] range of (v, w), while "
                   f"'{parent[0]}', fed by the same input contract '{contract_name}', has {parent[1]:.0%}: the "
                   "variant is broken (remake it with other settings), the contract is not to blame", err=True)
        return
    typer.echo(f"warning: {share:.0%} of {what} fall outside the normalized [0, 1] range of (v, w): the input "
               f"contract '{contract_name}' is probably not the one the model was trained with; pass --input",
               err=True)
