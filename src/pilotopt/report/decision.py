"""The report's decision tables: the recommendation against its baseline, the candidates in rank
order with their intervals, the variant x condition scores, failures in one compact table, and
whether offline error predicts driving (Spearman's rank correlation over variants)."""

from __future__ import annotations

from dataclasses import dataclass

from pilotopt.decide.verdict import ROLES, DecidedVariant
from pilotopt.report.tables import NULL, Column, Table, field_of


@dataclass(frozen=True)
class CiColumn(Column):
    """A mean with its 95 % interval, `key` the prefix of <key>_mean/_lo/_hi; sorts by the mean."""

    def value(self, row):
        v = field_of(row, f"{self.key}_mean")
        return None if v is None else float(v)

    def format(self, row) -> str:
        m, lo, hi = (field_of(row, f"{self.key}_{s}") for s in ("mean", "lo", "hi"))
        if m is None:
            return NULL
        if lo is None or hi is None or lo == hi:
            return format(m, self.fmt)
        return f"{format(m, self.fmt)} [{format(lo, self.fmt)}, {format(hi, self.fmt)}]"


DRIVE_COLUMNS = [
    CiColumn("cl_score", "Driving score [95 % CI]", ".1f"), CiColumn("cl_autonomy", "Autonomy % [95 % CI]", ".0f"),
    CiColumn("cl_deviation", "Deviation m [95 % CI]", ".3f"),
    Column("cl_runs_completed", "Clean laps", ".0f"), Column("cl_runs_total", "Drives", ".0f"),
    Column("slower_hw_text", "Drives on HW N x slower"),
]


def target_columns(rows: list[DecidedVariant]) -> list[Column]:
    """With a target device: its brain step p50 beside this machine's model call, and its status
    (a variant it cannot run, or that computes other commands there, is named so)."""
    target = next((r.target for r in rows if r.target), None)
    if not target:
        return []
    return [Column("target_brain_step_p50_ms", f"Brain step p50 on {target} (ms)", ".3f"),
            Column("target_status", f"On {target}")]


def decision_table(rows: list[DecidedVariant], rec: dict) -> Table:
    """The recommended variant, the runner-up and the baselines, side by side."""
    keep = sorted((r for r in rows if r.role), key=lambda r: ROLES.index(r.role))
    cols = [Column("role", "Role"), Column("name", "Variant"), Column("runtime", "Runtime"),
            Column("latency_p50_ms", "Inference p50 (ms)", ".3f"), *target_columns(rows),
            Column("speedup_vs_ref", "Speed-up", ".1f"),
            Column("size_mb", "Size (MB)", ".3f"), Column("size_ratio_vs_ref", "Size ratio", ".2f"),
            Column("mse_mean", "MSE", ".5g"), *DRIVE_COLUMNS]
    return Table("decision", cols, keep, caption="The recommendation against its baseline (speed-up and size "
                 "ratio against the reference baseline of the driving gate)")


def candidates_table(rows: list[DecidedVariant]) -> Table:
    """Every variant evaluated ok, in rank order (ranked ones first)."""
    ok = sorted((r for r in rows if r.status == "ok"),
                key=lambda r: (r.rank is None, r.rank or 0, r.latency_p50_ms or float("inf")))
    cols = [Column("rank", "Rank", ".0f"), Column("name", "Method"), Column("framework_label", "Framework"),
            Column("runtime", "Runtime"), Column("latency_p50_ms", "Inference p50 (ms)", ".3f"), *target_columns(rows),
            Column("size_bytes", "Size (MB)", ".3f", 1e6), Column("mse_mean", "MSE", ".5g"), *DRIVE_COLUMNS,
            Column("cl_mean_bm_position_deviation", "BM position deviation (mean 1000^d)", ".3g"),
            Column("cl_mean_interventions", "Interventions / drive", ".2f"),
            Column("cl_mean_brain_frequency_hz", "Brain freq. (Hz)", ".1f"),
            # the mean MSE is dominated by v; a model can keep it and still lose the steering
            Column("mse_w", "MSE w (steering)", ".3g"),
            Column("score_overlaps_chosen", "Score CI overlaps the chosen"),
            Column("violations_text", "Excluded by")]
    return Table("candidates", cols, ok, caption="Candidates (status ok) in rank order; unranked ones after, by "
                 "latency. Intervals are 95 % bootstrap intervals over the repetitions in the default condition; a "
                 "variant screened with a single drive shows that drive's value.")


def condition_table(rows: list[DecidedVariant], conditions: list[str]) -> Table | None:
    mine = [r for r in rows if len(r.cl_conditions) > 1]
    if not mine:
        return None
    cols = [Column("name", "Method")]
    flat = []
    for r in mine:  # display rows: one column group per condition
        f = {"name": r.name, "slower_hw_text": r.slower_hw_text}
        for i, c in enumerate(conditions):
            v = r.cl_conditions.get(c)
            f.update({f"c{i}_mean": v and v.score_mean, f"c{i}_lo": v and v.score_lo, f"c{i}_hi": v and v.score_hi,
                      f"c{i}_clean": f"{v.clean}/{v.n}" if v else None})
        flat.append(f)
    for i, c in enumerate(conditions):
        cols += [CiColumn(f"c{i}", f"{c}: score", ".1f"), Column(f"c{i}_clean", f"{c}: clean laps")]
    cols.append(Column("slower_hw_text", "Drives on HW N x slower"))
    return Table("conditions", cols, flat, caption="Driving score [95 % CI] and clean laps per condition")


def failures_table(rows: list[DecidedVariant], tech_rows: list[dict]) -> Table | None:
    """Failed and skipped techniques and variants, one row each."""
    seen, out = set(), []
    for t in tech_rows:
        if t["status"] != "ok":
            out.append({"name": t["name"], "framework_label": t.get("framework_label"), "stage": "technique",
                        "status_text": t["status_text"]})
            seen.add((t.get("framework"), t["name"]))
    for r in rows:
        if r.status != "ok" and (r.framework, r.name) not in seen:
            out.append({"name": r.name, "framework_label": r.framework_label, "stage": "evaluation",
                        "status_text": r.status_text})
    if not out:
        return None
    cols = [Column("name", "Variant"), Column("framework_label", "Framework"), Column("stage", "Stage"),
            Column("status_text", "Status and reason")]
    return Table("failures", cols, out, caption="Failed and skipped")


def predictive_text(p: dict) -> list[str]:
    lines = []
    for key, label in (("score", "driving score"), ("autonomy", "autonomy"),
                       ("score_vs_mse_w", "driving score, with the MSE of w (steering) alone")):
        s = p.get(key)
        if s is None:
            lines.append(f"MSE vs {label}: too few driven variants, or no variation, to correlate.")
            continue
        strength = abs(s["rho"])
        word = "strong" if strength >= 0.7 else "moderate" if strength >= 0.4 else "weak"
        lines.append(f"MSE vs {label}: Spearman rho {s['rho']:.2f} [{s['low']:.2f}, {s['high']:.2f}] over {s['n']} "
                     f"variants (p = {s['p']:.3g}), a {word} {'negative' if s['rho'] < 0 else 'positive'} rank "
                     "correlation" + (" whose interval includes 0: offline error does not reliably predict it"
                                      if s["low"] <= 0 <= s["high"] else "") + ".")
    return lines


def divergence_table(p: dict) -> Table | None:
    if not p.get("divergent"):
        return None
    cols = [Column("name", "Method"), Column("framework_label", "Framework"), Column("mse_mean", "MSE", ".5g"),
            Column("offline_rank", "Offline rank (1 = lowest MSE)", ".1f"),
            Column("cl_score_mean", "Driving score", ".1f"),
            Column("driving_rank", "Driving rank (1 = best)", ".1f"), Column("rank_shift", "Shift", "+.1f")]
    return Table("divergent", cols, p["divergent"], caption="Variants whose closed-loop rank differs most "
                 "from their offline rank")


STEERING_RATIO = 5.0  # a steering MSE this many times its baseline's is named as the likely cause


def driving_failures(rows: list[DecidedVariant]) -> list[str]:
    """One line per ok variant that did not drive every default-condition lap cleanly: clean laps,
    interventions, and its MSE of v and w against its baseline's (the mean MSE, dominated by v, can
    stay close while the steering is lost)."""
    by = {(r.framework, r.name): r for r in rows}
    out = []
    for r in rows:
        if r.status != "ok" or not r.cl_runs_total or r.cl_runs_completed == r.cl_runs_total:
            continue
        base = by.get((r.framework, r.baseline))
        line = (f"{r.name}: {r.cl_runs_completed}/{r.cl_runs_total} clean laps, "
                f"{_num(r.cl_mean_interventions, '.1f')} interventions per drive")
        if base is not None and base.mse_w and r.mse_w is not None and base.mse_mean:
            w = r.mse_w / base.mse_w
            m = r.mse_mean / base.mse_mean
            line += f"; its steering (w) MSE is {w:.1f}x its baseline's while its mean MSE is {m:.2f}x"
            if w >= STEERING_RATIO:
                line += ": the optimization lost the steering"
        out.append(line + ".")
    return out


def _num(x, spec: str) -> str:
    return NULL if x is None else format(x, spec)
