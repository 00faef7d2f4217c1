"""The training loop shared by every framework: seeded shuffling, early stopping on validation
loss, best-epoch checkpoint, metrics per output, a training curve. Finished runs are cached."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import numpy as np

from pilotopt import __version__
from pilotopt.atomic import atomic_path, ensure_writable_dir, write_json
from pilotopt.data import DataConfig, load_splits
from pilotopt.models import get_model_spec
from pilotopt.train.backend import make_backend
from pilotopt.train.config import TrainConfig

METRICS_SCHEMA = "pilotopt.train/1"
EVAL_BATCH = 256


def mse_per_output(pred: np.ndarray, y: np.ndarray) -> dict:
    err = (np.asarray(pred, dtype=np.float64) - np.asarray(y, dtype=np.float64)) ** 2
    if len(err) == 0:
        return {"v": None, "w": None, "mean": None, "n": 0}
    return {"v": float(err[:, 0].mean()), "w": float(err[:, 1].mean()), "mean": float(err.mean()),
            "n": int(len(err))}


def predict_split(backend, split, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    n = len(split) if limit is None else min(limit, len(split))
    preds, ys = [], []
    for start in range(0, n, EVAL_BATCH):
        x, y = split.batch(np.arange(start, min(n, start + EVAL_BATCH)))
        preds.append(backend.predict(x))
        ys.append(y)
    if not preds:
        return np.zeros((0, 2), np.float32), np.zeros((0, 2), np.float32)
    return np.concatenate(preds), np.concatenate(ys)


def is_done(out: Path, fingerprint: str) -> bool:
    try:
        return json.loads((out / "metrics.json").read_text()).get("fingerprint") == fingerprint
    except (OSError, ValueError):
        return False


def train(cfg: TrainConfig, progress: Callable[[str, int, int, dict], None] | None = None,
          force: bool = False) -> dict:
    """Train `cfg.model` with `cfg.framework`; returns the metrics written to out/metrics.json.
    `progress(phase, done, total, info)` reports batches and epochs."""
    cfg.validate()
    fingerprint = cfg.fingerprint()
    if not force and is_done(cfg.out, fingerprint):
        result = json.loads((cfg.out / "metrics.json").read_text())
        result["cached"] = True
        return result
    ensure_writable_dir(cfg.out.parent)
    spec = get_model_spec(cfg.model)
    t_data = time.perf_counter()
    splits = load_splits(DataConfig(
        roots=list(cfg.data), test_circuits=tuple(cfg.test_circuits), val_fraction=cfg.val_fraction,
        seed=cfg.seed, flip=cfg.flip, oversample=cfg.oversample, skip_bad=cfg.skip_bad, cache_dir=cfg.cache_dir,
        sequence_length=spec.sequence_length, augment=cfg.augment,
    ), progress=(lambda d, t: progress("data", d, t, {})) if progress else None)
    data_seconds = time.perf_counter() - t_data
    backend = make_backend(cfg.framework, model=cfg.model, seed=cfg.seed, learning_rate=cfg.learning_rate,
                           threads=cfg.threads)

    history: list[dict] = []
    best = {"val": float("inf"), "epoch": -1, "state": None}
    n_batches = (len(splits.train) + cfg.batch_size - 1) // cfg.batch_size
    t_train = time.perf_counter()
    for epoch in range(cfg.epochs):
        losses = []
        # the training split applies the configured augmentation (if any) itself
        for i, (x, y) in enumerate(splits.train.batches(cfg.batch_size, shuffle=True, seed=cfg.seed * 1000 + epoch)):
            losses.append(backend.train_step(x, y))
            if progress:
                progress("batch", i + 1, n_batches, {"epoch": epoch + 1, "loss": losses[-1]})
        pred, y_val = predict_split(backend, splits.val)
        val = mse_per_output(pred, y_val)["mean"]
        val = float("inf") if val is None else val
        history.append({"epoch": epoch + 1, "train_loss": float(np.mean(losses)), "val_loss": val})
        improved = val < best["val"]
        if improved:
            best = {"val": val, "epoch": epoch + 1, "state": backend.get_state()}
        if progress:
            progress("epoch", epoch + 1, cfg.epochs, {**history[-1], "best_epoch": best["epoch"]})
        if epoch + 1 - best["epoch"] > cfg.patience:
            break
    train_seconds = time.perf_counter() - t_train
    if best["state"] is not None:
        backend.set_state(best["state"])

    scores = {}
    for name, split, limit in (("train", splits.train, cfg.max_train_eval), ("val", splits.val, None),
                               ("test", splits.test, None)):
        pred, y = predict_split(backend, split, limit)
        scores[name] = mse_per_output(pred, y)
    metrics = {
        "schema": METRICS_SCHEMA,
        "pilotopt": __version__,
        "fingerprint": fingerprint,
        "framework": cfg.framework,
        "model": cfg.model,
        "params": backend.num_params(),
        "epochs_run": len(history),
        "best_epoch": best["epoch"],
        "best_val_loss": best["val"],
        "mse": scores,
        "history": history,
        "data": splits.summary,
        "seconds": {"data": data_seconds, "train": train_seconds},
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items()},
    }
    with atomic_path(cfg.out) as tmp:
        tmp.mkdir(parents=True)
        metrics["artifacts"] = backend.save(tmp, {"model": cfg.model, "framework": cfg.framework,
                                                  "fingerprint": fingerprint})
        plot_curve(history, tmp / "training_curve.png", f"{cfg.model} ({cfg.framework})")
        write_json(tmp / "metrics.json", metrics)
    return metrics


def plot_curve(history: list[dict], path: Path, title: str) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    epochs = [h["epoch"] for h in history]
    ax.plot(epochs, [h["train_loss"] for h in history], marker="o", label="train loss")
    ax.plot(epochs, [h["val_loss"] for h in history], marker="o", label="validation loss")
    best = min(history, key=lambda h: h["val_loss"]) if history else None
    if best:
        ax.axvline(best["epoch"], color="grey", linestyle=":", label=f"best epoch {best['epoch']}")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("MSE (normalized v, w)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, format="png")
