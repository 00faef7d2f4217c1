"""Error against the labels and agreement between variants, from predictions on the same frames.

MSE is per output (v, w) and their mean, in the normalized label space the models are trained in
(as in the study); MAE is in physical units (m/s, rad/s) after `denormalize_labels`, which clips
predictions to the label range as the simulator does."""

from __future__ import annotations

import numpy as np

from pilotopt.preprocess import denormalize_labels


def error_metrics(pred: np.ndarray, labels: np.ndarray) -> dict:
    pred = np.asarray(pred, dtype=np.float64).reshape(-1, 2)
    y = np.asarray(labels, dtype=np.float64).reshape(-1, 2)
    if pred.shape != y.shape:
        raise ValueError(f"{len(pred)} predictions for {len(y)} labels")
    mse = ((pred - y) ** 2).mean(axis=0)
    pv, pw = denormalize_labels(pred)
    yv, yw = denormalize_labels(y)
    return {"n": int(len(y)), "mse_v": float(mse[0]), "mse_w": float(mse[1]), "mse_mean": float(mse.mean()),
            "mae_v_mps": float(np.abs(pv - yv).mean()), "mae_w_radps": float(np.abs(pw - yw).mean())}


def compare(pred: np.ndarray, reference: np.ndarray) -> dict:
    """Agreement of two variants' outputs (normalized) on the same frames."""
    a = np.asarray(pred, dtype=np.float64).reshape(-1, 2)
    b = np.asarray(reference, dtype=np.float64).reshape(-1, 2)
    if a.shape != b.shape:
        raise ValueError(f"{len(a)} predictions vs {len(b)} reference predictions")
    d = a - b
    return {"n": int(len(a)), "max_abs_diff": float(np.abs(d).max()) if len(d) else 0.0,
            "mse": float((d ** 2).mean()) if len(d) else 0.0,
            "max_abs_diff_v": float(np.abs(d[:, 0]).max()) if len(d) else 0.0,
            "max_abs_diff_w": float(np.abs(d[:, 1]).max()) if len(d) else 0.0}
