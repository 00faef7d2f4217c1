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
4. Driving gate (when anything was driven): keep those that drive as well as the reference, the
   best-driving baseline: a candidate's mean driving score (over the default-condition drives) must
   reach the lower end of the reference's 95 % bootstrap interval over repetitions minus
   `score_tolerance` (default 5 points). A variant never driven does not pass. If the gate leaves
   nothing, the best-driving gated candidate is recommended and the report says so.
5. Condition gate (when anything was driven): under every cell the reference baseline of step 4
   was driven in (each condition, the default included, on each circuit and direction), a
   candidate must have been driven too, reach the lower end of that baseline's 95 % score interval
   there minus
   `score_tolerance`, and complete as large a share of clean laps as that baseline. A condition or
   circuit named in `relax_conditions` is left out. A candidate that fails a cell is excluded with
   the numbers ("dusk on simple: 0/3 clean laps, baseline 3/3"). If the gate leaves nothing, the
   candidates that fail the fewest cells remain and the report says so.
6. Rank the survivors by latency p50 (the target latency scale multiplies every variant alike), with
   differences inside the measurement's noise as ties: the fastest remaining variant and every one
   within `latency_tie` (default 25 %, the run-to-run spread of p50 on a shared machine) of it form
   a group, ranked inside by driving score (higher first), then latency, size, MSE and name; then
   the next group from the rest.

With a target device (`target.device`, `--target`), latency is the brain step p50 measured there
(ranking and max_latency_ms), and a variant the device cannot run, or whose commands there differ
from this machine's beyond its deploy folder's tolerance, is not a candidate: the baselines still
set the accuracy and driving bars.
Optimisation is about speed and size at "the same" accuracy, so accuracy is a gate with a tolerance
rather than the first sort key: ranking by raw MSE would pick whichever variant is luckiest on the
test set by 0.1 %, not the one worth deploying.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from pilotopt.errors import BadInputError
from pilotopt.decide.summary import NULL, status_text
from pilotopt.records import ScoreCell, VariantSummary

DEFAULT_MSE_TOLERANCE = 0.10
DEFAULT_SCORE_TOLERANCE = 5.0  # driving-score points
DEFAULT_LATENCY_TIE = 0.25  # relative p50 difference treated as a tie
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
    score_tolerance: float = DEFAULT_SCORE_TOLERANCE
    latency_tie: float = DEFAULT_LATENCY_TIE
    relax_conditions: tuple[str, ...] = ()  # conditions or circuits the condition gate leaves out

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
        for name, hint in (("mse_tolerance", "0.1 = 10 %"), ("score_tolerance", "driving-score points"),
                           ("latency_tie", "0.25 = 25 %")):
            v = getattr(out, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= 0:
                raise BadInputError(f"{name} must be >= 0 ({hint}), got {v!r}")
        relax = out.relax_conditions
        if isinstance(relax, str) or not all(isinstance(x, str) for x in relax or ()):
            raise BadInputError(f"relax_conditions must be a list of condition or circuit names, got {relax!r}")
        return cls(relax_conditions=tuple(relax or ()), max_latency_ms=None if out.max_latency_ms is None else float(out.max_latency_ms),
                   max_size_mb=None if out.max_size_mb is None else float(out.max_size_mb),
                   must_complete=bool(out.must_complete), mse_tolerance=float(out.mse_tolerance),
                   score_tolerance=float(out.score_tolerance), latency_tie=float(out.latency_tie))

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
        if self.relax_conditions:
            parts.append(f"not gated under {', '.join(self.relax_conditions)}")
        return "; ".join(parts) if parts else "none"


RULE_TEXT = ("Among variants evaluated offline with status ok that meet every constraint, keep those whose "
             "MSE is within {tol:g} % of the reference MSE (the best MSE among the un-optimised baselines; the "
             "best constrained candidate when no baseline was evaluated), and, when variants were driven, that "
             "drive as well as the best-driving baseline: a mean driving score at least the lower end of the "
             "baseline's 95 % interval minus {stol:g} points, under every condition, circuit and direction that "
             "baseline was driven in, with as large a share of clean laps there. Rank them by inference time p50, where "
             "differences below {tie:g} % are ties (inside the measurement's noise on a shared machine) broken "
             "by the driving score, then size, then MSE.")


def baseline_keys(rows: list[VariantSummary]) -> set[str]:
    """Keys of the un-optimised baselines: the variants other variants name as their baseline."""
    names = {((r.framework or ""), r.baseline) for r in rows if r.baseline}
    return {r.key for r in rows if ((r.framework or ""), r.name) in names}


def display_names(rows: list[VariantSummary]) -> dict[str, str]:
    """Variant key -> the name shown in text (the framework is added only where names collide)."""
    count: dict[str, int] = {}
    for r in rows:
        count[r.name] = count.get(r.name, 0) + 1
    return {r.key: r.name if count[r.name] == 1 else f"{r.name} [{r.framework}]" for r in rows}


def _fmt(x: float | None, spec: str) -> str:
    return NULL if x is None else format(x, spec)


def _rank_key(r: VariantSummary) -> tuple:
    """Inside a latency tie group: driving score first, then latency, size, MSE, name."""
    inf = math.inf
    return (-(r.cl_score_mean if r.cl_score_mean is not None else -inf),
            r.latency_p50_ms if r.latency_p50_ms is not None else inf,
            r.size_mb if r.size_mb is not None else inf, r.mse_mean, r.framework or "", r.name)


def _latency(r: VariantSummary) -> float:
    return r.latency_p50_ms if r.latency_p50_ms is not None else math.inf


def rank(rows: list[VariantSummary], tie: float) -> tuple[list[VariantSummary], dict[str, int]]:
    """Rows in rank order and each row's tie group (see the module doc, step 5)."""
    rest = sorted(rows, key=lambda r: (_latency(r), _rank_key(r)))
    out, group = [], {}
    g = 0
    while rest:
        limit = _latency(rest[0]) * (1.0 + tie)
        members = [r for r in rest if _latency(r) <= limit]
        for r in sorted(members, key=_rank_key):
            out.append(r)
            group[r.key] = g
        rest = [r for r in rest if r not in members]
        g += 1
    return out, group


def _score_text(r: VariantSummary) -> str:
    if r.cl_score_mean is None:
        return "not driven"
    return (f"driving score {r.cl_score_mean:.1f} [{r.cl_score_lo:.1f}, {r.cl_score_hi:.1f}]"
            + (f", autonomy {r.cl_autonomy_mean:.0f} %" if r.cl_autonomy_mean is not None else ""))


def _violations(r: VariantSummary, c: Constraints) -> list[str]:
    out = []
    if c.max_latency_ms is not None and (r.latency_p50_ms is None or r.latency_p50_ms > c.max_latency_ms):
        out.append("max_latency_ms")
    if c.max_size_mb is not None and (r.size_mb is None or r.size_mb > c.max_size_mb):
        out.append("max_size_mb")
    if c.must_complete and not r.cl_all_completed:
        out.append("must_complete")
    return out


def _why_excluded(r: VariantSummary, constraint: str) -> str:
    if constraint == "max_latency_ms":
        return f"{_fmt(r.latency_p50_ms, '.3f')} ms"
    if constraint == "max_size_mb":
        return f"{_fmt(r.size_mb, '.3f')} MB"
    if not r.cl_runs_total:
        return "never driven"
    return f"{r.cl_runs_completed}/{r.cl_runs_total} laps"


def _off_target(r: VariantSummary) -> str:
    if r.target_status == "ok":  # it ran there, but its commands are not the ones driven here
        return (f"its commands there differ from this machine's by up to {_fmt(r.target_check_max_abs, '.3g')}, "
                "beyond its tolerance: the drives here do not show how it drives there")
    return (r.target_reason or "not measured there").split(": ", 1)[-1]


def _describe(r: VariantSummary, name: str) -> str:
    laps = f"{r.cl_runs_completed}/{r.cl_runs_total} clean laps" if r.cl_runs_total else \
        "not driven in closed loop"
    return (f"{name} ({r.framework or NULL}, {r.runtime or NULL}): inference p50 "
            f"{_fmt(r.latency_p50_ms, '.3f')} ms, size {_fmt(r.size_mb, '.3f')} MB, MSE "
            f"{_fmt(r.mse_mean, '.5g')}, {_score_text(r)}, {laps}")


def _lost_on(best: VariantSummary, other: VariantSummary, groups: dict[str, int] | None = None, tie: float = DEFAULT_LATENCY_TIE) -> str:
    """Words for the first rank criterion on which `other` is worse than `best`."""
    groups = groups or {}
    same = groups.get(best.key) == groups.get(other.key)
    if not same:
        return (f"it is slower beyond the noise ({_fmt(other.latency_p50_ms, '.3f')} ms vs "
                f"{_fmt(best.latency_p50_ms, '.3f')} ms, more than {100 * tie:g} % apart)")
    a, b = best.cl_score_mean, other.cl_score_mean
    if a is not None and b is not None and b < a:
        return (f"it is as fast within the noise ({_fmt(other.latency_p50_ms, '.3f')} ms vs "
                f"{_fmt(best.latency_p50_ms, '.3f')} ms, under {100 * tie:g} % apart) and drives worse "
                f"(score {b:.1f} vs {a:.1f})")
    for key, label, spec, unit in (("latency_p50_ms", "slower", ".3f", " ms"), ("size_mb", "larger", ".3f", " MB"),
                                   ("mse_mean", "less accurate", ".5g", "")):
        a, b = getattr(best, key), getattr(other, key)
        if a != b:
            return f"it is {label} ({_fmt(b, spec)}{unit} vs {_fmt(a, spec)}{unit})"
    return "it ties on every criterion and comes later by name"


def cell_label(cell: ScoreCell, one_place: bool) -> str:
    """'dusk', or 'dusk on montreal (clockwise)' when several circuits or directions were driven."""
    return cell.condition if one_place else f"{cell.condition} on {cell.circuit} ({cell.direction})"


def driving_reference(baselines: list[VariantSummary]) -> VariantSummary | None:
    """The baseline the driving and condition gates measure a candidate against: the best-driving
    one (its mean driving score), in every cell, so a candidate is held to what one model does
    everywhere, not to the best of several baselines cell by cell (which no model, the baselines
    included, need manage). The run's rule and the search's trial table both ask this."""
    driven = [r for r in baselines if r.cl_score_mean is not None]
    return max(driven, key=lambda r: (r.cl_score_mean, r.name)) if driven else None


def condition_gate(candidates: list[VariantSummary], baselines: list[VariantSummary],
                   c: Constraints) -> tuple[list[VariantSummary], dict[str, list[str]], dict[str, dict]]:
    """(kept candidates, {key: [why excluded]}, {cell key: the reference cell and its variant}) by
    rule step 5."""
    refs: dict[str, tuple[ScoreCell, str]] = {}
    for b in baselines:
        for key, cell in b.cl_cells.items():
            if cell.condition in c.relax_conditions or cell.circuit in c.relax_conditions:
                continue
            if cell.score_mean is None:
                continue
            best = refs.get(key)
            if best is None or (cell.score_mean, cell.clean / max(cell.n, 1)) > \
                    (best[0].score_mean, best[0].clean / max(best[0].n, 1)):
                refs[key] = (cell, b.key)
    places = {(cell.circuit, cell.direction) for cell, _ in refs.values()}
    why: dict[str, list[str]] = {}
    for r in candidates:
        for key, (ref, _) in refs.items():
            label = cell_label(ref, len(places) <= 1)
            got = r.cl_cells.get(key)
            if got is None or not got.n:
                why.setdefault(r.key, []).append(f"{label}: not driven")
                continue
            limit = ref.score_lo - c.score_tolerance
            if got.clean * ref.n < ref.clean * got.n:
                why.setdefault(r.key, []).append(
                    f"{label}: {got.clean}/{got.n} clean laps, baseline {ref.clean}/{ref.n}")
            elif got.score_mean is None or got.score_mean < limit - 1e-9:
                why.setdefault(r.key, []).append(
                    f"{label}: score {_fmt(got.score_mean, '.1f')}, baseline {ref.score_mean:.1f} "
                    f"[{ref.score_lo:.1f}, {ref.score_hi:.1f}] (limit {limit:.1f})")
    return ([r for r in candidates if r.key not in why], why,
            {key: {**cell.to_json(), "variant": variant} for key, (cell, variant) in refs.items()})


def recommend(rows: list[VariantSummary], constraints: Any = None) -> dict:
    """Apply the rule to the variant rows of `tables.variant_rows`; returns the decision with the
    per-variant exclusions and the explanation lines the report prints."""
    c = Constraints.from_any(constraints)
    names = display_names(rows)
    rule = RULE_TEXT.format(tol=100 * c.mse_tolerance, stol=c.score_tolerance, tie=100 * c.latency_tie)
    lines: list[str] = [f"Constraints: {c.describe()}.", "Rule: " + rule]
    target = next((r.target for r in rows if r.target), None)
    if target:  # the car's latency is the device's brain step: ranked and limited by it
        rows = [r.model_copy(update={"latency_p50_ms": r.target_brain_step_p50_ms, "latency_p90_ms": None})
                if r.target_status == "ok" else r for r in rows]
        device = next((r.target_device for r in rows if r.target_device), None)
        lines.append(f"On {target}" + (f" ({device})" if device else "") + ": latency is the brain step p50 "
                     "measured there (the ranking and max latency use it); a variant that cannot run there "
                     "is not a candidate.")
    unavailable = [r for r in rows if r.status != "ok" or r.mse_mean is None]
    available = [r for r in rows if r not in unavailable]
    violations = {r.key: _violations(r, c) for r in available}
    excluded = {name: [r.key for r in available if name in violations[r.key]] for name in CONSTRAINT_NAMES}
    constrained = [r for r in available if not violations[r.key]]
    if target:
        off = [r for r in constrained if r.target_status != "ok" or r.target_check_ok is False]
        excluded["target"] = [r.key for r in off]
        constrained = [r for r in constrained if r not in off]
        if off:  # one reason, said once, for all the variants it rules out (a missing runtime: many)
            why: dict[str, list[str]] = {}
            for r in off:
                why.setdefault(_off_target(r), []).append(names[r.key])
            lines.append(f"Not runnable on {target}: " + "; ".join(f"{', '.join(n)} ({reason})"
                                                                   for reason, n in why.items()) + ".")

    if unavailable:
        lines.append("Not candidates (not ok offline): " + "; ".join(
            f"{names[r.key]}: " + (status_text(r.status, r.reason) if r.status != "ok"
                                      else "no MSE measured") for r in unavailable) + ".")
    for name in CONSTRAINT_NAMES:
        if excluded[name]:
            by_key = {r.key: r for r in available}
            lines.append(f"Excluded by {CONSTRAINT_LABELS[name]}: " + ", ".join(
                f"{names[k]} ({_why_excluded(by_key[k], name)})" for k in excluded[name]) + ".")

    # reference MSE: the best baseline that other variants are measured against
    baseline_names = {(r.framework or "", r.baseline) for r in rows if r.baseline}
    baselines = [r for r in available if ((r.framework or ""), r.name) in baseline_names]
    reference = None
    if baselines:
        ref = min(baselines, key=lambda r: (r.mse_mean, r.name))
        reference = {"variant": ref.key, "mse": ref.mse_mean, "source": "baseline"}
    elif constrained:
        ref = min(constrained, key=lambda r: (r.mse_mean, r.name))
        reference = {"variant": ref.key, "mse": ref.mse_mean, "source": "best constrained candidate"}
    mse_limit = None if reference is None else reference["mse"] * (1.0 + c.mse_tolerance)

    gated = [r for r in constrained if r.mse_mean <= mse_limit] if mse_limit is not None else []
    accuracy_out = [r.key for r in constrained if r not in gated]
    excluded["accuracy"] = accuracy_out
    if reference is not None:
        lines.append(f"Reference MSE: {reference['mse']:.5g} ({names[reference['variant']]}, {reference['source']}); "
                     f"accuracy limit +{100 * c.mse_tolerance:g} % = {mse_limit:.5g}.")
    fallback = False
    if constrained and not gated:
        fallback = True
        gated = [min(constrained, key=lambda r: (r.mse_mean, _rank_key(r)))]
        accuracy_out = [k for k in accuracy_out if k != gated[0].key]
        lines.append(f"No constrained variant is within {100 * c.mse_tolerance:g} % of the reference MSE; "
                     "falling back to the most accurate one.")
    elif accuracy_out:
        by_key = {r.key: r for r in constrained}
        lines.append("Excluded by the accuracy limit: " + ", ".join(
            f"{names[k]} (MSE {by_key[k].mse_mean:.5g})" for k in accuracy_out) + ".")

    # driving gate: not clearly worse than the best baseline's driving score
    driven = [r for r in rows if r.cl_score_mean is not None]
    score_ref = None
    drove_out: list[str] = []
    driving_fallback = False
    if driven and gated:
        ref = driving_reference(baselines)
        if ref is not None:
            score_ref = {"variant": ref.key, "score": ref.cl_score_mean, "low": ref.cl_score_lo,
                         "high": ref.cl_score_hi, "limit": ref.cl_score_lo - c.score_tolerance}
            keep = [r for r in gated if r.cl_score_mean is not None
                    and r.cl_score_mean >= score_ref["limit"] - 1e-9]
            drove_out = [r.key for r in gated if r not in keep]
            lines.append(f"Reference driving score: {ref.cl_score_mean:.1f} [{ref.cl_score_lo:.1f}, "
                         f"{ref.cl_score_hi:.1f}] ({names[ref.key]}); a candidate's mean must reach "
                         f"{score_ref['limit']:.1f}.")
            if not keep:
                driving_fallback = True
                keep = [max((r for r in gated), key=lambda r: (r.cl_score_mean or -1.0, -_latency(r)))]
                drove_out = [k for k in drove_out if k != keep[0].key]
                lines.append("No candidate drives within the tolerance of the baseline; falling back to the best-driving one.")
            elif drove_out:
                by_key = {r.key: r for r in gated}
                lines.append("Excluded by the driving gate: " + ", ".join(
                    f"{names[k]} ({_score_text(by_key[k])})" for k in drove_out) + ".")
            gated = keep
    excluded["driving"] = drove_out

    # condition gate: drives as well as the best baseline under every condition, circuit and direction
    condition_why: dict[str, list[str]] = {}
    condition_fallback = False
    refs: dict[str, dict] = {}
    if driven and gated:
        # the baseline the driving gate measured against (driving_reference), in every cell
        judge = [r for r in baselines if score_ref and r.key == score_ref["variant"]] or baselines
        keep, condition_why, refs = condition_gate(gated, judge, c)
        if len(refs) > 1 or any(ref["condition"] != "default" for ref in refs.values()):
            lines.append(f"Condition gate: {len(refs)} cells (condition x circuit x direction) the reference "
                         "baseline was driven in; a candidate must match that baseline's share of clean laps there and reach its "
                         f"score interval minus {c.score_tolerance:g} points"
                         + (f" (not gated: {', '.join(c.relax_conditions)})" if c.relax_conditions else "") + ".")
        if not keep:
            condition_fallback = True
            fewest = min(len(condition_why[r.key]) for r in gated)
            keep = [r for r in gated if len(condition_why[r.key]) == fewest]
        out = [r for r in gated if r not in keep]
        unseen = [r for r in out if all(w.endswith(": not driven") for w in condition_why[r.key])]
        failed = [r for r in out if r not in unseen]
        if failed:
            lines.append("Excluded by the condition gate: " + "; ".join(
                f"{names[r.key]} ({', '.join(condition_why[r.key])})" for r in failed) + ".")
        if unseen:
            lines.append(f"Excluded by the condition gate, never driven under the conditions (not shortlisted): "
                         + ", ".join(names[r.key] for r in unseen) + ".")
        if condition_fallback:
            lines.append("No candidate drives every tested condition as well as the baseline; the ones failing the "
                         f"fewest cells remain: " + "; ".join(
                             f"{names[r.key]} ({', '.join(condition_why[r.key])})" for r in keep) + ".")
        gated = keep
    excluded["conditions"] = [k for k in condition_why if k not in {r.key for r in gated}]

    ranking, groups = rank(gated, c.latency_tie)
    best = ranking[0] if ranking else None
    runner = ranking[1] if len(ranking) > 1 else None
    most, counts = None, {n: len(excluded[n]) for n in CONSTRAINT_NAMES}
    if best is not None:
        summary = f"Deploy {_describe(best, names[best.key])}" + (f" on {target}." if target else ".")
        lines.append("Recommended: " + _describe(best, names[best.key]) + ".")
        drives_ok = (" and drives as well as the baseline within its interval" if score_ref and not driving_fallback
                     else "")
        if score_ref and not driving_fallback and not condition_fallback and len(refs) > 1:
            drives_ok += " under every tested condition, circuit and direction"
        why = ("it is the most accurate variant that meets the constraints" if fallback else
               ("it drives best of the candidates that meet the constraints (none drives as well as the baseline)"
                if driving_fallback else
                f"it meets every constraint, is within {100 * c.mse_tolerance:g} % of the reference MSE{drives_ok}, "
                f"and ranks first of {len(ranking)} such variant{'s' if len(ranking) != 1 else ''}"))
        lines.append(f"Why: {why}.")
        if runner is not None:
            lines.append(f"Runner-up: {_describe(runner, names[runner.key])}; it ranks second because "
                         f"{_lost_on(best, runner, groups, c.latency_tie)}.")
        else:
            lines.append("Runner-up: none (no other variant passed the constraints, the accuracy limit and the driving gate).")
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
        nearest = sorted(available, key=lambda r: (len(violations[r.key]), _rank_key(r)))[0]
        lines.append(f"Closest: {names[nearest.key]}, which fails only "
                     + ", ".join(CONSTRAINT_LABELS[v] for v in violations[nearest.key]) + ".")

    return {
        "rule": rule,
        "score_reference": score_ref,
        "driving_fallback": driving_fallback,
        "condition_fallback": condition_fallback,
        "condition_reasons": condition_why,
        "tie_groups": groups,
        "constraints": c.to_dict(),
        "reference": reference,
        "mse_limit": mse_limit,
        "recommended": best.key if best else None,
        "recommended_name": names[best.key] if best else None,
        "runner_up": runner.key if runner else None,
        "ranking": [r.key for r in ranking],
        "baselines": sorted(baseline_keys(rows)),
        "names": names,
        "accuracy_fallback": fallback,
        "unavailable": [r.key for r in unavailable],
        "excluded": excluded,
        "violations": violations,
        "most_excluding_constraint": most,
        "summary": summary,
        "explanation": lines,
    }
