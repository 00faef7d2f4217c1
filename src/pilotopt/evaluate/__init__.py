"""Offline evaluation: one protocol for every variant (size, error, latency), in fresh processes.

    from pilotopt.evaluate import evaluate_artifacts
    doc = evaluate_artifacts("artifacts", ["data"], "eval", threads=2)   # also eval/results.json, .csv

Modules: harness (the run), testset (frames prepared once), worker (one variant in a fresh
process), accuracy (MSE / MAE, cross-checks), results (rows, files, table, a variant's precision
and MACs), latency (time_calls), plugins (extra runtime modules); sizes and parameter counts come
from pilotopt.artifacts.
Importing this package imports no framework."""

from __future__ import annotations

__all__ = ["RESULTS_SCHEMA", "evaluate_artifacts"]


def __getattr__(name: str):
    # on first use: `python -m pilotopt.evaluate.worker` imports this package first, and a harness
    # imported here would import the worker module before runpy runs it as __main__
    if name == "evaluate_artifacts":
        from pilotopt.evaluate.harness import evaluate_artifacts

        return evaluate_artifacts
    if name == "RESULTS_SCHEMA":
        from pilotopt.evaluate.results import RESULTS_SCHEMA  # on first use too, as above

        return RESULTS_SCHEMA
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
