"""The whole decision over a run's records, in one typed object the report renders: each variant's
summary with what the decision says of it (rank, role, constraints it breaks, Pareto fronts, its
breaking point, speed-up and size against the reference baseline), the recommendation with its
explanation, and whether offline error predicts driving."""

from __future__ import annotations

from typing import Any, Optional

from pydantic import BaseModel, ConfigDict

from pilotopt.decide import pareto
from pilotopt.decide.rule import Constraints, recommend
from pilotopt.decide.stats import overlaps, ranks, spearman_ci
from pilotopt.decide.summary import summarize
from pilotopt.records import DEFAULT_CONDITION, BreakingPointRecord, Drive, OfflineRow, RankShift, VariantSummary

ROLES = ("recommended", "runner-up", "baseline")


class DecidedVariant(VariantSummary):
    """A variant's summary and the decision's verdict on it."""

    rank: Optional[int] = None  # place in the ranking (None: not ranked)
    role: str = ""  # recommended, runner-up, baseline or ""
    eligible: bool = False  # ok offline and inside every hard constraint
    violations: list[str] = []  # constraints and gates it failed ("not_ok_offline" when it was not ok)
    recommended: bool = False
    pareto_latency_mse: bool = False
    pareto_size_mse: bool = False
    peak_share: Optional[float] = None  # achieved GMAC/s as a share of the machine's peak for its precision
    breaking_text: Optional[str] = None
    breaking_scale: Optional[float] = None
    slower_hw_text: Optional[str] = None  # "N x" slower hardware it still drives cleanly on
    score_overlaps_chosen: Optional[bool] = None
    speedup_vs_ref: Optional[float] = None
    size_ratio_vs_ref: Optional[float] = None

    @property
    def violations_text(self) -> str:
        return ", ".join(self.violations)


class Decision(BaseModel):
    """What `decide` returns: the variants with their verdicts, the recommendation (the rule's own
    dict: explanation lines, exclusions, tie groups), the Pareto fronts, the conditions driven and
    the offline-vs-driving correlation."""

    model_config = ConfigDict(frozen=True)

    variants: list[DecidedVariant]
    recommendation: dict[str, Any]
    fronts: dict[str, list[str]]
    conditions: list[str]
    predictive: dict[str, Any]
    constraints: Constraints

    @property
    def chosen(self) -> DecidedVariant | None:
        return next((v for v in self.variants if v.recommended), None)


def slower_text(r: VariantSummary) -> str | None:
    if r.cl_slow_tested is None or r.cl_slow_tested == 1.0:
        return None
    if r.cl_max_slow is None:
        return "not even 1x"
    return f"{r.cl_max_slow:g}x" + (" (all tested)" if r.cl_max_slow == r.cl_slow_tested else "")


def predictive(rows: list[VariantSummary]) -> dict:
    """Does offline MSE predict driving? Spearman's rho (with a bootstrap interval) between MSE and
    the driving score and autonomy over the driven variants (a good predictor gives a strongly
    negative rho: more error, worse driving), and the variants whose ranks differ most."""
    pts = [r for r in rows if r.status == "ok" and r.mse_mean is not None and r.cl_score_mean is not None]
    out: dict = {"n": len(pts), "score": None, "autonomy": None, "score_vs_mse_w": None, "divergent": []}
    if len(pts) < 3:
        return out
    mse = [r.mse_mean for r in pts]
    out["score"] = spearman_ci(mse, [r.cl_score_mean for r in pts])
    auto = [r for r in pts if r.cl_autonomy_mean is not None]
    out["autonomy"] = spearman_ci([r.mse_mean for r in auto], [r.cl_autonomy_mean for r in auto])
    steer = [r for r in pts if r.mse_w is not None]  # the steering output alone
    out["score_vs_mse_w"] = spearman_ci([r.mse_w for r in steer], [r.cl_score_mean for r in steer])
    off_rank = ranks(mse)  # 1 = lowest error
    drive_rank = ranks([r.cl_score_mean for r in pts], descending=True)  # 1 = best driving
    div = [RankShift(name=r.name, framework_label=r.framework_label, mse_mean=r.mse_mean,
                     cl_score_mean=r.cl_score_mean, offline_rank=a, driving_rank=b, rank_shift=b - a)
           for r, a, b in zip(pts, off_rank, drive_rank)]
    div.sort(key=lambda d: (-abs(d.rank_shift), d.name))
    out["divergent"] = [d.to_json() for d in div[:5]]
    return out


def decide(offline: list[OfflineRow], drives: list[Drive], constraints: Any = None, peaks: dict | None = None,
           breaking_points: list[BreakingPointRecord] | None = None) -> Decision:
    """Summarize the records, apply the rule, and give each variant its verdict. `peaks`: the
    machine's measured GMAC/s per precision (`pilotopt bench machine`); `breaking_points`: the
    records of pipeline.breaking."""
    cons = Constraints.from_any(constraints)
    summaries = summarize(offline, drives)
    rec = recommend(summaries, cons)
    fronts = pareto.fronts(summaries)
    by_key = {s.key: s for s in summaries}
    unavailable = set(rec["unavailable"])
    accuracy, driving = set(rec["excluded"].get("accuracy", [])), set(rec["excluded"].get("driving", []))
    order = {k: i + 1 for i, k in enumerate(rec["ranking"])}
    bases = set(rec["baselines"])
    breaking = {b.key: b for b in breaking_points or []}
    chosen = by_key.get(rec["recommended"])
    ref = by_key.get((rec.get("score_reference") or {}).get("variant"))
    out = []
    for s in summaries:
        k = s.key
        violations = (["not_ok_offline"] if k in unavailable else
                      list(rec["violations"].get(k, [])) + (["accuracy"] if k in accuracy else [])
                      + (["driving"] if k in driving else []))
        base = ref or by_key.get(f"{s.framework or ''}/{s.baseline}")
        peak = (peaks or {}).get(f"{s.precision}_gmacs")
        out.append(DecidedVariant(
            **{name: getattr(s, name) for name in VariantSummary.model_fields},
            rank=order.get(k),
            role=("recommended" if k == rec["recommended"] else "runner-up" if k == rec["runner_up"]
                  else "baseline" if k in bases else ""),
            eligible=k not in unavailable and not rec["violations"].get(k), violations=violations,
            recommended=k == rec["recommended"],
            pareto_latency_mse=k in fronts["pareto_latency_mse"], pareto_size_mse=k in fronts["pareto_size_mse"],
            peak_share=s.gmacs_per_s / peak if peak and s.gmacs_per_s else None,
            breaking_text=breaking[k].text if k in breaking else None,
            breaking_scale=breaking[k].scale if k in breaking else None,
            slower_hw_text=(breaking[k].text if k in breaking else None) or slower_text(s),
            score_overlaps_chosen=(None if chosen is None or chosen is s or s.cl_score_mean is None
                                   else overlaps(_ci(s), _ci(chosen))),
            speedup_vs_ref=(base.latency_p50_ms / s.latency_p50_ms if base is not None and s.latency_p50_ms
                            and base.latency_p50_ms else None),
            size_ratio_vs_ref=(s.size_mb / base.size_mb if base is not None and s.size_mb and base.size_mb
                               else None)))
    conditions = list(dict.fromkeys([DEFAULT_CONDITION, *(d.condition for d in drives)])) if drives else []
    return Decision(variants=out, recommendation=rec, fronts=fronts, conditions=conditions,
                    predictive=predictive(summaries), constraints=cons)


def _ci(s: VariantSummary) -> tuple | None:
    m = s.cl_score_mean
    return None if m is None else (m, m if s.cl_score_lo is None else s.cl_score_lo,
                                   m if s.cl_score_hi is None else s.cl_score_hi)
