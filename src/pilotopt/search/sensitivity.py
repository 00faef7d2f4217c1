"""Per-layer sensitivity judged by driving: for the best int8 ONNX Runtime candidate, rebuild it
once per weight layer with that layer kept in float, drive each one with the run's protocol, and
rank the layers by how much driving score keeping them in float recovers (not by their MSE).
Each variant is an ordinary trial (cached by its chain and settings), so a rerun costs nothing."""

from __future__ import annotations

import copy
from typing import Callable

from pilotopt.errors import BadInputError
from pilotopt.search.context import SearchContext
from pilotopt.search.results import md_table
from pilotopt.search.space import Candidate
from pilotopt.search.trial import run_trial
from pilotopt.techniques._onnx import ARTIFACT, compute_nodes

INT8 = "onnx_int8_static"
SCHEMA = "pilotopt.search.sensitivity/1"


def pick(docs: list[dict], recommended: str | None) -> dict | None:
    """The recommended trial if its chain ends in int8 ONNX Runtime, else the best-scoring such
    trial driven with the whole protocol."""
    fit = [d for d in docs if d and d.get("state") == "complete" and d.get("fidelity", 0) >= 3
           and d["candidate"]["steps"][-1] == INT8]
    chosen = [d for d in fit if d["name"] == recommended]
    if chosen:
        return chosen[0]
    return max(fit, key=lambda d: (d["metrics"]["score"], -(d["metrics"].get("latency_p50_ms") or 0)), default=None)


def layers_of(doc: dict) -> list[str]:
    from pathlib import Path

    return compute_nodes(Path(doc["variant"]) / ARTIFACT)


def sensitivity(ctx: SearchContext, ref: dict, doc: dict, say: Callable[[str], None] = print,
                limit: int | None = None) -> dict:
    """The table for one int8 trial: per layer, the driving score with that layer in float and the
    change against the all-int8 variant, most recovered first."""
    steps = list(doc["candidate"]["steps"])
    if steps[-1] != INT8:
        raise BadInputError(f"per-layer sensitivity needs a chain ending in {INT8}; {'>'.join(steps)} does not")
    layers = layers_of(doc)[:limit] if limit else layers_of(doc)
    base = doc["metrics"]
    rows = []
    for i, layer in enumerate(layers, 1):
        settings = copy.deepcopy(doc["candidate"]["settings"])
        settings.setdefault(INT8, {})["keep_float"] = layer
        cand = Candidate(doc["candidate"]["baseline"], tuple(steps), settings)
        got = run_trial(ctx, cand, ref)
        m = got.get("metrics") or {}
        row = {"layer": layer, "name": cand.name, "state": got.get("state"), "reason": got.get("reason"),
               "score": m.get("score"), "score_change": None if m.get("score") is None else m["score"] - base["score"],
               "score_default_mean": m.get("score_default_mean"), "mse_ratio": m.get("mse_ratio"),
               "latency_p50_ms": m.get("latency_p50_ms"), "size_mb": m.get("size_mb"), "fidelity": got.get("fidelity")}
        rows.append(row)
        change = "-" if row["score_change"] is None else f"{row['score_change']:+.1f}"
        say(f"sensitivity [{i}/{len(layers)}] {layer} in float: score {change}")
    rows.sort(key=lambda r: -(r["score_change"] if r["score_change"] is not None else -1e9))
    return {"schema": SCHEMA, "trial": doc["name"], "chain": ">".join(steps), "score_all_int8": base["score"],
            "latency_all_int8_ms": base.get("latency_p50_ms"), "layers": rows}


def table(doc: dict) -> str:
    def f(x, spec):
        return "-" if x is None else format(x, spec)

    rows = [[r["layer"], f(r["score"], ".1f"), f(r["score_change"], "+.1f"), f(r["mse_ratio"], ".3f"),
             f(r["latency_p50_ms"], ".3f"), r["state"] if r["state"] != "complete" else ""] for r in doc["layers"]]
    return md_table(["layer kept in float", "score", "change vs all int8", "MSE ratio", "p50 ms", "note"], rows)
