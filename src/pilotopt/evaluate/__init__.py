"""Offline evaluation: one protocol for every variant (size, error, latency), in fresh processes.

    from pilotopt.evaluate import evaluate_artifacts
    doc = evaluate_artifacts("artifacts", ["data"], "eval", threads=2)   # also eval/results.json, .csv

Modules: harness (the run), testset (frames prepared once), worker (one variant in a fresh
process), size (bytes, gzip, parameter counts), accuracy (MSE / MAE, cross-checks), results
(rows, files, table), latency (time_calls), plugins (extra runtime modules).
Importing this package imports nothing heavy."""

from __future__ import annotations

__all__ = ["RESULTS_SCHEMA", "evaluate_artifacts"]


def __getattr__(name: str):
    if name == "evaluate_artifacts":
        from pilotopt.evaluate.harness import evaluate_artifacts

        return evaluate_artifacts
    if name == "RESULTS_SCHEMA":
        from pilotopt.evaluate.results import RESULTS_SCHEMA

        return RESULTS_SCHEMA
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
