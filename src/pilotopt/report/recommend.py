"""Which variant to deploy, and why, under the user's constraints.

The rule (RULE_TEXT says it in the report):

1. Candidates are variants evaluated offline with status ok and a measured MSE.
2. Hard constraints exclude candidates: offline model latency p50 (ms) <= max_latency_ms; size
   (bytes / 1e6) <= max_size_mb; must_complete: every closed-loop drive of the variant completed its
   lap (a variant never driven does not qualify). A missing measurement fails its constraint.
3. Accuracy gate: keep those whose MSE is within `mse_tolerance` (default 10 %) of the reference MSE,
   the best MSE among the un-optimised baselines (the variants others cross-check against). With no
   baseline evaluated, the reference is the best MSE among the constrained candidates. If the gate
   leaves nothing, the most accurate constrained candidate is recommended and the report says so.
4. Rank the survivors by: share of closed-loop drives that completed a lap (higher first: evidence
   the model actually drives), then latency p50, then size, then MSE, then name.

Optimisation is about speed and size at "the same" accuracy, so accuracy is a gate with a tolerance
rather than the first sort key: ranking by raw MSE would pick whichever variant is luckiest on the
test set by 0.1 %, not the one worth deploying.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from pilotopt.errors import BadInputError
from pilotopt.report.tables import NULL, status_text

DEFAULT_MSE_TOLERANCE = 0.10
CONSTRAINT_NAMES = ("max_latency_ms", "max_size_mb", "must_complete")
CONSTRAINT_LABELS = {"max_latency_ms": "max latency", "max_size_mb": "max size",
                     "must_complete": "must complete every lap"}


@dataclass(frozen=True)
class Constraints:
    """User constraints; None / False means unconstrained."""

    max_latency_ms: float | None = None
    max_size_mb: float | None = None
    must_complete: bool = False
    mse_tolerance: float = DEFAULT_MSE_TOLERANCE

    @classmethod
    def from_any(cls, c: Any) -> "Constraints":
        """Accept None, a Constraints, a dict with these keys, or an object with these attributes."""
        if c is None:
            return cls()
        if isinstance(c, cls):
            out = c
        else:
            names = [f.name for f in fields(cls)]
            if isinstance(c, dict):
                unknown = sorted(set(c) - set(names))
                if unknown:
                    raise BadInputError(f"unknown constraint(s) {', '.join(unknown)}; use {', '.join(names)}")
                values = {k: v for k, v in c.items() if v is not None}
            else:
                values = {k: getattr(c, k) for k in names if getattr(c, k, None) is not None}
            out = cls(**values)
        for name in ("max_latency_ms", "max_size_mb"):
            v = getattr(out, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0):
                raise BadInputError(f"{name} must be a positive number, got {v!r}")
        if not isinstance(out.mse_tolerance, (int, float)) or not out.mse_tolerance >= 0:
            raise BadInputError(f"mse_tolerance must be >= 0 (0.1 = 10 %), got {out.mse_tolerance!r}")
        return cls(max_latency_ms=None if out.max_latency_ms is None else float(out.max_latency_ms),
                   max_size_mb=None if out.max_size_mb is None else float(out.max_size_mb),
                   must_complete=bool(out.must_complete), mse_tolerance=float(out.mse_tolerance))

    def to_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        parts = []
        if self.max_latency_ms is not None:
            parts.append(f"inference time p50 at most {self.max_latency_ms:g} ms")
        if self.max_size_mb is not None:
            parts.append(f"size at most {self.max_size_mb:g} MB")
        if self.must_complete:
            parts.append("every closed-loop drive completes its lap")
        return "; ".join(parts) if parts else "none"


RULE_TEXT = ("Among variants evaluated offline with status ok that meet every constraint, keep those whose "
             "MSE is within {tol:g} % of the reference MSE (the best MSE among the un-optimised baselines; the "
             "best constrained candidate when no baseline was evaluated), then rank them by share of closed-loop "
             "drives that completed a lap (more first), then inference time p50, then size, then MSE.")


def display_names(rows: list[dict]) -> dict[str, str]:
    """Variant key -> the name shown in text (the framework is added only where names collide)."""
    count: dict[str, int] = {}
    for r in rows:
        count[r["name"]] = count.get(r["name"], 0) + 1
    return {r["key"]: r["name"] if count[r["name"]] == 1 else f"{r['name']} [{r.get('framework')}]" for r in rows}


def _fmt(x: float | None, spec: str) -> str:
    return NULL if x is None else format(x, spec)


def _completion(r: dict) -> float:
    return r["cl_runs_completed"] / r["cl_runs_total"] if r.get("cl_runs_total") else 0.0


def _rank_key(r: dict) -> tuple:
    inf = math.inf
    return (-_completion(r), r["latency_p50_ms"] if r["latency_p50_ms"] is not None else inf,
            r["size_mb"] if r["size_mb"] is not None else inf, r["mse_mean"], r.get("framework") or "", r["name"])


def _violations(r: dict, c: Constraints) -> list[str]:
    out = []
    if c.max_latency_ms is not None and (r["latency_p50_ms"] is None or r["latency_p50_ms"] > c.max_latency_ms):
        out.append("max_latency_ms")
    if c.max_size_mb is not None and (r["size_mb"] is None or r["size_mb"] > c.max_size_mb):
        out.append("max_size_mb")
    if c.must_complete and not r.get("cl_all_completed"):
        out.append("must_complete")
    return out


def _why_excluded(r: dict, constraint: str) -> str:
    if constraint == "max_latency_ms":
        return f"{_fmt(r['latency_p50_ms'], '.3f')} ms"
    if constraint == "max_size_mb":
        return f"{_fmt(r['size_mb'], '.3f')} MB"
    if not r.get("cl_runs_total"):
        return "never driven"
    return f"{r['cl_runs_completed']}/{r['cl_runs_total']} laps"


def _describe(r: dict, name: str) -> str:
    laps = f"{r['cl_runs_completed']}/{r['cl_runs_total']} closed-loop laps" if r.get("cl_runs_total") else \
        "not driven in closed loop"
    return (f"{name} ({r.get('framework') or NULL}, {r.get('runtime') or NULL}): inference p50 "
            f"{_fmt(r['latency_p50_ms'], '.3f')} ms, size {_fmt(r['size_mb'], '.3f')} MB, MSE "
            f"{_fmt(r['mse_mean'], '.5g')}, {laps}")


def _lost_on(best: dict, other: dict) -> str:
    """Words for the first rank criterion on which `other` is worse than `best`."""
    if _completion(other) < _completion(best):
        return (f"it completed fewer closed-loop laps ({other['cl_runs_completed']}/{other['cl_runs_total'] or 0} "
                f"vs {best['cl_runs_completed']}/{best['cl_runs_total']})")
    for key, label, spec, unit in (("latency_p50_ms", "slower", ".3f", " ms"), ("size_mb", "larger", ".3f", " MB"),
                                   ("mse_mean", "less accurate", ".5g", "")):
        a, b = best[key], other[key]
        if a != b:
            return f"it is {label} ({_fmt(b, spec)}{unit} vs {_fmt(a, spec)}{unit})"
    return "it ties on every criterion and comes later by name"


def recommend(rows: list[dict], constraints: Any = None) -> dict:
    """Apply the rule to the variant rows of `tables.variant_rows`; returns the decision with the
    per-variant exclusions and the explanation lines the report prints."""
    c = Constraints.from_any(constraints)
    names = display_names(rows)
    lines: list[str] = [f"Constraints: {c.describe()}.", "Rule: " + RULE_TEXT.format(tol=100 * c.mse_tolerance)]
    unavailable = [r for r in rows if r.get("status") != "ok" or r.get("mse_mean") is None]
    available = [r for r in rows if r not in unavailable]
    violations = {r["key"]: _violations(r, c) for r in available}
    excluded = {name: [r["key"] for r in available if name in violations[r["key"]]] for name in CONSTRAINT_NAMES}
    constrained = [r for r in available if not violations[r["key"]]]

    if unavailable:
        lines.append("Not candidates (not ok offline): " + "; ".join(
            f"{names[r['key']]}: " + (status_text(r.get("status"), r.get("reason")) if r.get("status") != "ok"
                                      else "no MSE measured") for r in unavailable) + ".")
    for name in CONSTRAINT_NAMES:
        if excluded[name]:
            by_key = {r["key"]: r for r in available}
            lines.append(f"Excluded by {CONSTRAINT_LABELS[name]}: " + ", ".join(
                f"{names[k]} ({_why_excluded(by_key[k], name)})" for k in excluded[name]) + ".")

    # reference MSE: the best baseline that other variants are measured against
    baseline_names = {(r.get("framework") or "", r["baseline"]) for r in rows if r.get("baseline")}
    baselines = [r for r in available if ((r.get("framework") or ""), r["name"]) in baseline_names]
    reference = None
    if baselines:
        ref = min(baselines, key=lambda r: (r["mse_mean"], r["name"]))
        reference = {"variant": ref["key"], "mse": ref["mse_mean"], "source": "baseline"}
    elif constrained:
        ref = min(constrained, key=lambda r: (r["mse_mean"], r["name"]))
        reference = {"variant": ref["key"], "mse": ref["mse_mean"], "source": "best constrained candidate"}
    mse_limit = None if reference is None else reference["mse"] * (1.0 + c.mse_tolerance)

    gated = [r for r in constrained if r["mse_mean"] <= mse_limit] if mse_limit is not None else []
    accuracy_out = [r["key"] for r in constrained if r not in gated]
    excluded["accuracy"] = accuracy_out
    if reference is not None:
        lines.append(f"Reference MSE: {reference['mse']:.5g} ({names[reference['variant']]}, {reference['source']}); "
                     f"accuracy limit +{100 * c.mse_tolerance:g} % = {mse_limit:.5g}.")
    fallback = False
    if constrained and not gated:
        fallback = True
        gated = [min(constrained, key=lambda r: (r["mse_mean"], _rank_key(r)))]
        accuracy_out = [k for k in accuracy_out if k != gated[0]["key"]]
        lines.append(f"No constrained variant is within {100 * c.mse_tolerance:g} % of the reference MSE; "
                     "falling back to the most accurate one.")
    elif accuracy_out:
        by_key = {r["key"]: r for r in constrained}
        lines.append("Excluded by the accuracy limit: " + ", ".join(
            f"{names[k]} (MSE {by_key[k]['mse_mean']:.5g})" for k in accuracy_out) + ".")

    ranking = sorted(gated, key=_rank_key)
    best = ranking[0] if ranking else None
    runner = ranking[1] if len(ranking) > 1 else None
    most, counts = None, {n: len(excluded[n]) for n in CONSTRAINT_NAMES}
    if best is not None:
        summary = f"Deploy {_describe(best, names[best['key']])}."
        lines.append("Recommended: " + _describe(best, names[best["key"]]) + ".")
        why = ("it is the most accurate variant that meets the constraints" if fallback else
               f"it meets every constraint, is within {100 * c.mse_tolerance:g} % of the reference MSE and ranks first"
               f" of {len(ranking)} such variant{'s' if len(ranking) != 1 else ''}")
        lines.append(f"Why: {why}.")
        if runner is not None:
            lines.append(f"Runner-up: {_describe(runner, names[runner['key']])}; it ranks second because "
                         f"{_lost_on(best, runner)}.")
        else:
            lines.append("Runner-up: none (no other variant passed the constraints and the accuracy limit).")
    elif not available:
        summary = "No variant was evaluated successfully offline: nothing to recommend."
        lines.append(summary)
    else:
        top = max(counts.values())
        most = [n for n in CONSTRAINT_NAMES if counts[n] == top][0]
        tied = [CONSTRAINT_LABELS[n] for n in CONSTRAINT_NAMES if counts[n] == top and n != most]
        summary = (f"No variant satisfies the constraints; {CONSTRAINT_LABELS[most]} ({most}) excluded the most: "
                   f"{counts[most]} of {len(available)} candidates"
                   + (f" (tied with {', '.join(tied)})" if tied else "") + ".")
        lines.append(summary)
        nearest = sorted(available, key=lambda r: (len(violations[r["key"]]), _rank_key(r)))[0]
        lines.append(f"Closest: {names[nearest['key']]}, which fails only "
                     + ", ".join(CONSTRAINT_LABELS[v] for v in violations[nearest["key"]]) + ".")

    return {
        "rule": RULE_TEXT.format(tol=100 * c.mse_tolerance),
        "constraints": c.to_dict(),
        "reference": reference,
        "mse_limit": mse_limit,
        "recommended": best["key"] if best else None,
        "recommended_name": names[best["key"]] if best else None,
        "runner_up": runner["key"] if runner else None,
        "ranking": [r["key"] for r in ranking],
        "accuracy_fallback": fallback,
        "unavailable": [r["key"] for r in unavailable],
        "excluded": excluded,
        "violations": violations,
        "most_excluding_constraint": most,
        "summary": summary,
        "explanation": lines,
    }
