"""Per-layer sensitivity judged by driving: for the best int8 ONNX Runtime candidate, rebuild it
once per weight layer with that layer kept in float, drive each one with the run's protocol, and
rank the layers by how much driving score keeping them in float recovers (not by their MSE).
Each variant is an ordinary trial (cached by its chain and settings), so a rerun costs nothing."""

from __future__ import annotations

import copy
from typing import Callable

from pilotopt.errors import BadInputError
from pilotopt.records import LayerSensitivity, SearchTrial
from pilotopt.search.context import SearchContext
from pilotopt.search.results import md_table
from pilotopt.search.space import Candidate
from pilotopt.search.trial import run_trial
from pilotopt.techniques._onnx import ARTIFACT, compute_nodes

INT8 = "onnx_int8_static"
SCHEMA = "pilotopt.search.sensitivity/1"


def pick(docs: list[SearchTrial | None], recommended: str | None) -> SearchTrial | None:
    """The recommended trial if its chain ends in int8 ONNX Runtime, else the best-scoring such
    trial driven with the whole protocol."""
    fit = [d for d in docs if d is not None and d.complete and d.fidelity >= 3 and d.summary is not None
           and d.candidate["steps"][-1] == INT8]
    chosen = [d for d in fit if d.name == recommended]
    if chosen:
        return chosen[0]
    return max(fit, key=lambda d: (d.score, -(d.summary.latency_p50_ms or 0)), default=None)


def layers_of(doc: SearchTrial) -> list[str]:
    from pathlib import Path

    return compute_nodes(Path(doc.variant) / ARTIFACT)


def sensitivity(ctx: SearchContext, ref: dict, doc: SearchTrial, say: Callable[[str], None] = print,
                limit: int | None = None) -> dict:
    """The table for one int8 trial: per layer, the driving score with that layer in float and the
    change against the all-int8 variant, most recovered first."""
    steps = list(doc.candidate["steps"])
    if steps[-1] != INT8:
        raise BadInputError(f"per-layer sensitivity needs a chain ending in {INT8}; {'>'.join(steps)} does not")
    layers = layers_of(doc)[:limit] if limit else layers_of(doc)
    rows = []
    for i, layer in enumerate(layers, 1):
        settings = copy.deepcopy(doc.candidate["settings"])
        settings.setdefault(INT8, {})["keep_float"] = layer
        cand = Candidate(doc.candidate["baseline"], tuple(steps), settings)
        got = run_trial(ctx, cand, ref)
        m = got.summary
        score = got.score if got.complete else None
        row = LayerSensitivity(layer=layer, name=cand.name, state=got.state, reason=got.reason, score=score,
                               score_change=None if score is None else score - doc.score,
                               score_default_mean=m.cl_score_mean if m else None, mse_ratio=got.mse_ratio,
                               latency_p50_ms=m.latency_p50_ms if m else None, size_mb=m.size_mb if m else None,
                               fidelity=got.fidelity)
        rows.append(row)
        change = "-" if row.score_change is None else f"{row.score_change:+.1f}"
        say(f"sensitivity [{i}/{len(layers)}] {layer} in float: score {change}")
    rows.sort(key=lambda r: -(r.score_change if r.score_change is not None else -1e9))
    return {"schema": SCHEMA, "trial": doc.name, "chain": ">".join(steps), "score_all_int8": doc.score,
            "latency_all_int8_ms": doc.summary.latency_p50_ms if doc.summary else None,
            "layers": [r.to_json() for r in rows]}


def table(doc: dict) -> str:
    def f(x, spec):
        return "-" if x is None else format(x, spec)

    layers = [LayerSensitivity.from_json(r, "a sensitivity row") for r in doc["layers"]]
    rows = [[r.layer, f(r.score, ".1f"), f(r.score_change, "+.1f"), f(r.mse_ratio, ".3f"), f(r.latency_p50_ms, ".3f"),
             r.state if r.state != "complete" else ""] for r in layers]
    return md_table(["layer kept in float", "score", "change vs all int8", "MSE ratio", "p50 ms", "note"], rows)
