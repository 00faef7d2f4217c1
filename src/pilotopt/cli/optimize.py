"""`pilotopt optimize`: apply optimization techniques to a trained baseline, one variant folder each;
`pilotopt list techniques`: every registered technique and whether it can run here."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from pilotopt.cli.model_options import ArchArgsOption, ArchOption, InputOption, parse_arch_args
from pilotopt.errors import BadInputError, one_line
from pilotopt.records import Produced
from pilotopt.techniques._fidelity import MAX_MSE_RATIO

list_app = typer.Typer(help="List what pilotopt knows about.", no_args_is_help=True)


def parse_sets(items: list[str] | None) -> dict[str, dict]:
    """`technique.key=value` strings -> {technique: {key: "value"}} (values typed later, per field)."""
    out: dict[str, dict] = {}
    for item in items or []:
        left, sep, value = item.partition("=")
        name, dot, key = left.strip().partition(".")
        if not sep or not dot or not name or not key.strip():
            raise BadInputError(f"--set '{item}' must look like technique.key=value, e.g. tflite_int8.calibration_frames=200")
        out.setdefault(name, {})[key.strip()] = value.strip()
    return out


def optimize_cmd(
    model: Path = typer.Option(..., help="Input model: a training output folder, pilotopt checkpoint, PyTorch state dict "
                                         "(with --arch), TorchScript, ONNX, Keras .h5 / .keras / SavedModel."),
    arch: Optional[str] = ArchOption,
    arch_args: Optional[str] = ArchArgsOption,
    input_: Optional[str] = InputOption,
    techniques: str = typer.Option("", help="Comma-separated technique names or chains a>b>c (each step's output is "
                                            "the next one's input), or all (see `pilotopt list techniques`)."),
    data: Optional[list[Path]] = typer.Option(None, help="Dataset root folder (repeat for several); its TRAINING split "
                                                         "is used for calibration and fine-tuning."),
    out: Path = typer.Option(..., help="Artifacts folder: one variant folder per technique."),
    config: Optional[Path] = typer.Option(None, help="YAML file of settings {technique: {key: value}}, or with "
                                                     "sections settings: and variants: {name: {steps: [...], settings: ...}}."),
    set_: Optional[list[str]] = typer.Option(None, "--set", help="Override one setting: technique.key=value (repeatable)."),
    seed: int = typer.Option(0, help="Seed for frame selection and fine-tuning."),
    threads: int = typer.Option(2, min=1, help="CPU threads for the frameworks."),
    cache_dir: Optional[Path] = typer.Option(None, help="Preprocessed-data cache (default $PILOTOPT_CACHE or ~/.cache/pilotopt)."),
    test_circuits: Optional[str] = typer.Option(None, help="Held-out circuits kept out of the training split "
                                                           "(comma-separated; default as in training)."),
    force: bool = typer.Option(False, help="Redo variants already done with the same settings and baseline."),
    timeout: Optional[float] = typer.Option(None, min=1.0, help="Seconds one technique may run before it is killed "
                                                                "and recorded as failed (default: no limit)."),
    max_mse_ratio: float = typer.Option(MAX_MSE_RATIO, min=1.0, help="A variant fails when its MSE on training "
                                        "frames exceeds this multiple of its input model's (or an output turned "
                                        "constant): it no longer computes the model's function."),
) -> None:
    """Apply each technique to the baseline in its own process; writes OUT/<technique>/variant.json
    and the artifact. A technique that fails or cannot run here is recorded and the others go on."""
    from rich.table import Table

    from pilotopt.cli.progress import console, out as stdout
    from pilotopt.techniques import optimize

    circuits = None if test_circuits is None else tuple(c.strip() for c in test_circuits.split(",") if c.strip())
    variants = optimize(model, techniques, list(data or []), out, settings=parse_sets(set_), config_file=config,
                        arch=arch, arch_args=parse_arch_args(arch_args), contract=input_,
                        seed=seed, threads=threads, cache_dir=cache_dir, test_circuits=circuits, force=force, timeout=timeout,
                        max_mse_ratio=max_mse_ratio,
                        progress=lambda msg: console.print(msg, highlight=False, markup=False))
    table = Table(title=f"variants in {out}")
    table.add_column("variant", overflow="fold")
    for col in ("status", "runtime", "size", "max |diff| vs its input", "seconds", "note"):
        table.add_column(col)
    for v in variants:
        done = Produced.of(v.record)
        size, diff, secs = done.size_bytes, done.check_max_abs_diff, done.duration_s
        table.add_row(v.name, v.status, v.runtime, "-" if size is None else f"{size / 1024:.1f} KiB",
                      "-" if diff is None else f"{diff:.3g}", "-" if secs is None else f"{secs:.1f}",
                      v.reason or ("already done" if done.reused else ""))
    stdout.print(table)
    failed = sum(v.status == "failed" for v in variants)
    typer.echo(f"{len(variants) - failed} of {len(variants)} techniques ok or skipped; written to {out}")


def settings_lines() -> list[str]:
    """Every setting of every technique, from the declarations: name, type, default, bounds, description."""
    from pilotopt.techniques import techniques

    lines = []
    for name, tech in techniques().items():
        lines.append(f"{name}:" + ("" if tech.settings else " no settings"))
        for p in tech.settings:
            bounds = f", {p.bounds}" if p.bounds else ""
            lines.append(f"  {p.name} ({p.type_name}, default {p.default_text}{bounds}): {p.description}")
    lines.append("set one with --set technique.key=value (pilotopt optimize), or under technique_settings: "
                 "{technique: {key: value}} or technique_defaults: {key: value} in a run config")
    return lines


@list_app.command("techniques")
def list_techniques_cmd(
    settings: bool = typer.Option(False, "--settings", help="Print every setting of every technique instead: "
                                                            "type, default, allowed values and description."),
) -> None:
    """Every registered technique: its framework, what it does, and whether it can run here."""
    from rich.table import Table

    from pilotopt.cli.progress import out as stdout
    from pilotopt.techniques import techniques

    if settings:
        for line in settings_lines():
            typer.echo(line)
        return
    table = Table(title="optimization techniques")
    table.add_column("name", no_wrap=True)
    for col in ("framework", "runtime", "what it does", "available here"):
        table.add_column(col, overflow="fold")
    for name, tech in techniques().items():
        try:
            ok, why = tech.available()
        except Exception as exc:  # noqa: BLE001
            ok, why = False, one_line(exc)
        table.add_row(name, tech.framework, tech.runtime, tech.description, "yes" if ok else f"no: {why}")
    stdout.print(table)


@list_app.command("contracts")
def list_contracts_cmd() -> None:
    """Input-contract presets: crop, size, layout, value scaling and output mapping of each."""
    from rich.table import Table

    from pilotopt.cli.progress import out as stdout
    from pilotopt.contracts import contract_names, get_contract

    table = Table(title="input contracts (--input NAME, or a YAML file: base, crop, size, interpolation, channels, "
                        "layout, scaling, pixel_scale, mean, std, outputs)")
    for col in ("name", "preprocessing", "outputs -> physical", "for"):
        table.add_column(col, overflow="fold")
    for name in contract_names():
        c = get_contract(name)
        o = c.outputs
        table.add_row(name, c.summary().split(": ", 1)[1] + (" (size from the model)" if c.size_from_model else ""),
                      f"v = {o.v_scale:g} p{o.v_index} + {o.v_offset:g}, w = {o.w_scale:g} p{o.w_index} + {o.w_offset:g}",
                      c.description)
    stdout.print(table)


@list_app.command("archs")
def list_archs_cmd() -> None:
    """Architectures a bare PyTorch state dict can be loaded into with --arch."""
    from pilotopt.cli.progress import out as stdout
    from pilotopt.models.arch import arch_names, resolve_arch

    for name in arch_names():
        a = resolve_arch(name)
        stdout.print(f"{name}: {a.description} (input {a.declared_shape}, contract {a.contract})", highlight=False)
    stdout.print("or package.module:Class with --arch-args", highlight=False)


@list_app.command("kinds")
def list_kinds_cmd() -> None:
    """Model file kinds pilotopt detects by content, and the runtime that runs each."""
    from pilotopt.artifacts import kinds
    from pilotopt.cli.progress import out as stdout

    for kind in kinds().values():
        stdout.print(f"{kind.name}: {kind.description} -> runtime {kind.runtime}", highlight=False)


@list_app.command("conditions")
def list_conditions_cmd() -> None:
    """Closed-loop driving conditions (closed_loop.conditions, `sim drive --condition`)."""
    from pilotopt.cli.progress import out as stdout
    from pilotopt.sim.conditions import condition_kinds

    for name, kind in sorted(condition_kinds().items()):
        level = f"; level: {kind.level} (default {kind.default_level:g})" if kind.level else ""
        stdout.print(f"{name}: {kind.description}{level}", highlight=False)
    stdout.print("name[:level], combined with '+', e.g. dusk+gaussian:8+slow:10", highlight=False)
