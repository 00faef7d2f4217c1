"""`pilotopt train`: train a baseline model in PyTorch or TensorFlow."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from pilotopt.atomic import ensure_writable_dir
from pilotopt.cli.progress import console, out as stdout
from pilotopt.train.config import TrainConfig
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

D = TrainConfig()  # the defaults of every option that mirrors a TrainConfig field


def train_cmd(
    framework: str = typer.Option(D.framework, help="torch or tf."),
    model: str = typer.Option(D.model, help="Architecture: pilotnet, pilotnet_same, deepest_lstm_tinypilotnet, pilotnet_student."),
    data: list[Path] = typer.Option(..., help="Dataset root folder (repeat for several)."),
    out: Path = typer.Option(..., help="Output folder for the model, metrics.json and the training curve."),
    epochs: int = typer.Option(D.epochs, help="Maximum epochs."),
    batch_size: int = typer.Option(D.batch_size, help="Batch size."),
    learning_rate: float = typer.Option(D.learning_rate, help="Adam learning rate."),
    patience: int = typer.Option(D.patience, help="Early stopping: epochs without a better validation loss."),
    seed: int = typer.Option(D.seed, help="Seed: same seed and data, same model."),
    threads: int = typer.Option(D.threads, help="CPU threads for the framework."),
    test_circuits: str = typer.Option(",".join(D.test_circuits), help="Held-out circuits (comma-separated)."),
    val_fraction: float = typer.Option(D.val_fraction, help="Share of training recordings used for validation."),
    flip: bool = typer.Option(D.flip, help="Add mirrored frames (w negated) to the training split."),
    oversample: int = typer.Option(D.oversample, help="Repeat sharp-turn frames this many times in training."),
    augment: Optional[str] = typer.Option(D.augment, help="Image augmentation: none or default (albumentations)."),
    skip_bad: bool = typer.Option(D.skip_bad, help="Skip unreadable frames/recordings with a count instead of failing."),
    cache_dir: Optional[Path] = typer.Option(None, help="Preprocessed-data cache (default $PILOTOPT_CACHE or ~/.cache/pilotopt)."),
    force: bool = typer.Option(False, help="Retrain even if the output folder holds this exact run."),
) -> None:
    """Train a model on datasets in the DeepLearningStudio format; writes the model, metrics.json
    (train/val/test MSE per output) and training_curve.png."""
    from pilotopt.train import TrainConfig, train

    cfg = TrainConfig(framework=framework, model=model, data=list(data), out=out, epochs=epochs,
                      batch_size=batch_size, learning_rate=learning_rate, patience=patience, seed=seed,
                      threads=threads, test_circuits=tuple(c.strip() for c in test_circuits.split(",") if c.strip()),
                      val_fraction=val_fraction, flip=flip, oversample=oversample, augment=augment,
                      skip_bad=skip_bad, cache_dir=cache_dir).validate()

    ensure_writable_dir(out.parent)
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
                  TimeElapsedColumn(), console=console, disable=not console.is_terminal) as prog:
        tasks: dict[str, int] = {}

        def progress(phase: str, done: int, total: int, info: dict) -> None:
            label = {"data": "preprocess frames", "batch": "batches", "epoch": "epochs"}[phase]
            if phase not in tasks:
                tasks[phase] = prog.add_task(label, total=total, info="")
            text = ""
            if phase == "batch":
                text = f"epoch {info['epoch']} loss {info['loss']:.4f}"
            elif phase == "epoch":
                text = f"val {info['val_loss']:.5f} (best epoch {info['best_epoch']})"
            prog.update(tasks[phase], completed=done, total=total, info=text)
            if phase == "epoch" and not console.is_terminal:  # logs: one plain line per epoch
                typer.echo(f"epoch {done}/{total}: train {info['train_loss']:.5f} {text}", err=True)

        metrics = train(cfg, progress=progress, force=force)
    if metrics.get("cached"):
        console.print(f"already trained with these settings: {out} (use --force to retrain)")
    table = Table(title=f"{metrics['model']} ({metrics['framework']}), {metrics['params']:,} parameters")
    for col in ("split", "MSE v", "MSE w", "MSE mean", "samples"):
        table.add_column(col, justify="right")
    for split in ("train", "val", "test"):
        s = metrics["mse"][split]
        fmt = lambda x: "-" if x is None else f"{x:.5f}"  # noqa: E731
        table.add_row(split, fmt(s["v"]), fmt(s["w"]), fmt(s["mean"]), str(s["n"]))
    stdout.print(table)
    typer.echo(f"best epoch {metrics['best_epoch']} of {metrics['epochs_run']}; "
               f"training {metrics['seconds']['train']:.0f} s; written to {out}")
