"""What a search leaves: results.json (every trial's chain, settings, fidelity and figures, the
Pareto front, the recommendation and where latency was measured), search.md (the front, every
trial, and the search against the run's fixed menu), front.png, and replay.yaml, which
`pilotopt optimize --config` runs to rebuild the recommended variant."""

from __future__ import annotations

import json
import math
import platform
from pathlib import Path

from pilotopt.atomic import atomic_path, write_json, write_text
from pilotopt.pipeline.config import technique_overrides
from pilotopt.decide import Constraints, condition_gate, driving_reference, recommend
from pilotopt.decide.pareto import dominates
from pilotopt.decide.verdict import DecidedVariant
from pilotopt.records import SearchTrial, VariantSummary
from pilotopt.report import markdown  # search.md is rendered with the report's writer
from pilotopt.search.context import SearchContext
from pilotopt.search.trial import cached_trial

RESULTS_SCHEMA = "pilotopt.search/1"


def md_table(header: list[str], rows: list[list]) -> str:
    return "\n".join(markdown.md_table(header, rows))


def _trials(ctx: SearchContext, study) -> list[dict]:
    import optuna

    out = []
    for t in study.get_trials(deepcopy=False):
        name = t.user_attrs.get("name")
        doc = cached_trial(ctx, name) if name else None
        if t.state == optuna.trial.TrialState.FAIL and t.user_attrs.get("interrupted"):
            continue
        # a trial that made no scored variant is told to the sampler as a dominated point, not as a failure
        state = "failed" if doc is not None and not doc.complete else t.state.name.lower()
        out.append({"number": t.number, "state": state, "params": dict(t.params),
                    "values": list(t.values) if t.values else None, "name": name,
                    "chain": t.user_attrs.get("chain"), "doc": doc})
    return out


def _fidelity(t: dict) -> int:
    return t["doc"].fidelity if t.get("doc") is not None else 0


def _screened_out(t: dict) -> bool:
    """The screen stopped it: offline, or after a first drive below screen.first_drive_min_score."""
    return t.get("doc") is not None and bool(t["doc"].screen)


def front(trials: list[dict], directions: list[str]) -> list[dict]:
    """The non-dominated complete trials that were driven (one per distinct variant), in trial order:
    a candidate the screen stopped has no driving score to stand on, however small or fast it is
    (one stopped after its first drive included: that drive scored below the screen's floor)."""
    seen, pts = set(), []
    for t in trials:
        if (t["state"] == "complete" and t["values"] and _fidelity(t) >= 2 and not _screened_out(t)
                and t["name"] not in seen):
            seen.add(t["name"])
            pts.append(t)
    return [t for t in pts if not any(dominates(o["values"], t["values"], directions) for o in pts if o is not t)]


def short_of(doc: SearchTrial | None, constraints) -> str | None:
    """Why a driven trial misses the score / autonomy floor (None: it meets them, or was not driven)."""
    if doc is None or doc.fidelity < 2 or doc.summary is None:
        return None
    score, autonomy = doc.score, doc.summary.cl_autonomy_mean
    if constraints.min_score is not None and (score is None or score < constraints.min_score):
        return f"score {_fmt(score, '.1f')} < constraints.min_score {constraints.min_score:g}"
    if constraints.min_autonomy is not None and (autonomy is None or autonomy < constraints.min_autonomy):
        return f"autonomy {_fmt(autonomy, '.1f')} % < constraints.min_autonomy {constraints.min_autonomy:g}"
    return None


def off_the_gate(ctx: SearchContext, trial: dict, ref: dict[str, SearchTrial]) -> str | None:
    """Why a trial driven by the whole protocol fails the report's condition gate against the
    baselines (a condition, circuit or direction a baseline drives cleanly and it does not), or None."""
    doc = trial.get("doc")
    if doc is None or doc.summary is None or doc.fidelity < 3:
        return None
    cfg = ctx.cfg
    rule = Constraints(score_tolerance=cfg.report.score_tolerance,
                       relax_conditions=tuple(cfg.report.relax_conditions))
    # the baseline the run's decision holds candidates to (the best-driving one), not each cell's best
    judge = driving_reference([v.summary for v in ref.values() if v.summary is not None])
    if judge is None:
        return None
    _, why, _ = condition_gate([doc.summary], [judge], rule)
    reasons = why.get(doc.summary.key)
    return f"condition gate: {'; '.join(reasons)}" if reasons else None


def _per_condition(m: VariantSummary | None) -> str:
    """'default 91.2 (3/3), dusk 60.1 (3/3)': each condition's mean score and clean laps."""
    if m is None:
        return "-"
    return ", ".join(f"{k} {_fmt(v.score_mean, '.1f')} ({v.clean}/{v.n})" for k, v in m.cl_conditions.items()) or "-"


def _read(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def recommend_from(ctx: SearchContext, trials: list[dict], ref: dict[str, SearchTrial]) -> dict:
    """The report's rule over the driven front and the baselines, the MSE gate opened to the
    screen's ratio (the search judges by driving; the screen already bounded the MSE)."""
    cfg = ctx.cfg
    rows = [v.summary for v in ref.values() if v.summary is not None]
    rows += [t["doc"].summary for t in trials if _fidelity(t) >= 3 and t["doc"].summary is not None]
    c = ctx.search.constraints
    rule = Constraints(max_latency_ms=c.max_latency_ms, max_size_mb=c.max_size_mb,
                       must_complete=cfg.report.must_complete, mse_tolerance=ctx.search.screen.max_mse_ratio - 1.0,
                       score_tolerance=cfg.report.score_tolerance, latency_tie=cfg.report.latency_tie,
                       relax_conditions=tuple(cfg.report.relax_conditions))
    return recommend(rows, rule)


def _fmt(x, spec=".3f", none="-"):
    return none if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def _ci(m: VariantSummary | None) -> str:
    if m is None or m.cl_score_mean is None:
        return "-"
    return f"{m.cl_score_mean:.1f} [{_fmt(m.cl_score_lo, '.1f')}, {_fmt(m.cl_score_hi, '.1f')}]"


def trial_table(trials: list[dict], front_names: set[str]) -> str:
    rows = []
    for t in trials:
        doc: SearchTrial | None = t["doc"]
        m = doc.summary if doc is not None else None
        status = t["state"] if doc is None or doc.state != "failed" else f"failed: {str(doc.reason)[:80]}"
        rows.append([t["number"], ("**" + (t["chain"] or "-") + "**") if t["name"] in front_names else (t["chain"] or "-"),
                     _settings_text(doc), _fmt(doc.score if m else None, ".1f"), _ci(m), _per_condition(m),
                     _fmt(m.latency_p50_ms if m else None), _fmt(doc.mmacs if doc else None, ".1f"),
                     _fmt(m.size_mb if m else None), _fmt(doc.mse_ratio if doc else None, ".2f"),
                     doc.fidelity if doc else "-", (doc.screen if doc else None) or t.get("short_of") or status])
    return md_table(["trial", "chain", "settings", "score (all conditions)", "score default [95 % CI]",
                     "per condition: score (clean laps)", "p50 ms",
                     "MMACs", "MB", "MSE ratio", "fidelity", "note"], rows)


def _settings_text(doc: SearchTrial | None) -> str:
    st = (doc.candidate.get("settings") if doc is not None else None) or {}
    parts = [f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for s in st.values() for k, v in s.items()]
    return ", ".join(parts) or "-"


def report_variants(doc: dict) -> list[DecidedVariant]:
    """The variants of a run's report (report/results.json: each one's figures and verdict)."""
    return [DecidedVariant.from_json(v, f"variant {i} of the run's report") for i, v in enumerate(doc.get("variants", []))]


def menu_table(ctx: SearchContext, rec_doc: SearchTrial | None, ref: dict) -> tuple[str, dict] | None:
    """The run's fixed menu (its report's recommendation and best driver) beside the search's pick."""
    path = ctx.run / "report" / "results.json"
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    rows = {r.key: r for r in report_variants(doc)}
    pick = (doc.get("recommendation") or {}).get("recommended")
    menu = rows.get(pick) if pick else None
    lines, verdict = [], {}
    if menu is not None:
        lines.append(["fixed menu (the run's recommendation)", menu.name, _fmt(menu.cl_score_mean, ".1f"),
                      f"[{_fmt(menu.cl_score_lo, '.1f')}, {_fmt(menu.cl_score_hi, '.1f')}]",
                      _fmt(menu.latency_p50_ms), _fmt(menu.size_mb)])
    if rec_doc is not None and rec_doc.summary is not None:
        m = rec_doc.summary
        lines.append(["search (recommended)", rec_doc.chain, _fmt(m.cl_score_mean, ".1f"),
                      f"[{_fmt(m.cl_score_lo, '.1f')}, {_fmt(m.cl_score_hi, '.1f')}]",
                      _fmt(m.latency_p50_ms), _fmt(m.size_mb)])
        if menu is not None:
            best_menu = max((r for r in rows.values() if r.cl_score_mean is not None),
                            key=lambda r: r.cl_score_mean, default=None)
            as_good = (best_menu is None or m.cl_score_hi is None or m.cl_score_hi >= (best_menu.cl_score_lo or 0.0))
            faster = (m.latency_p50_ms or math.inf) < (menu.latency_p50_ms or 0.0)
            smaller = (m.size_mb or math.inf) < (menu.size_mb or 0.0)
            verdict = {"as_good_as_every_menu_variant": bool(as_good), "faster_than_menu_pick": bool(faster),
                       "smaller_than_menu_pick": bool(smaller),
                       "best_menu_driver": best_menu.name if best_menu else None}
    if not lines:
        return None
    table = md_table(["", "variant", "score default", "95 % CI", "p50 ms", "MB"], lines)
    return table, verdict


def plot(trials: list[dict], front_names: set[str], rec_name: str | None, path: Path) -> Path | None:
    pts = [((t["doc"].summary.latency_p50_ms, t["doc"].score), t["name"]) for t in trials
           if t["doc"] is not None and t["doc"].summary is not None and t["doc"].summary.latency_p50_ms is not None]
    if not pts:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for (p50, score), name in pts:
        on = name in front_names
        ax.scatter(p50, score, s=40 if on else 18, c="tab:red" if on else "tab:gray",
                   alpha=0.9 if on else 0.5, zorder=3 if on else 2)
        if name == rec_name:
            ax.scatter(p50, score, s=160, facecolors="none", edgecolors="black", zorder=4)
    ax.set_xscale("log")
    ax.set_xlabel("p50 latency, batch 1 (ms, log)")
    ax.set_ylabel("driving score (mean over conditions)")
    ax.set_title("search trials: Pareto front in red, the recommended circled")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return path


def replay_yaml(ctx: SearchContext, doc: SearchTrial) -> str:
    """A `pilotopt optimize --config` file that rebuilds the variant: its steps with every setting
    it ran with (the run's technique defaults included)."""
    import yaml

    cand = doc.candidate
    defaults = technique_overrides(ctx.cfg, list(dict.fromkeys(cand["steps"])))
    settings = {s: {**defaults.get(s, {}), **(cand["settings"].get(s) or {})} for s in cand["steps"]}
    base = ctx.baselines[cand["baseline"]]
    head = (f"# pilotopt search: trial {doc.name}, chain {cand['chain']}\n"
            f"# replay: pilotopt optimize --model {base.source} --config replay.yaml "
            f"--data {' --data '.join(map(str, ctx.data_roots))} --test-circuits {','.join(ctx.cfg.data.test_circuits)} "
            f"--seed {ctx.cfg.seed} --out DIR\n")
    spec = {"steps": list(cand["steps"])}
    if any(settings.values()):
        spec["settings"] = {k: v for k, v in settings.items() if v}
    return head + yaml.safe_dump({"variants": {doc.name: spec}}, sort_keys=False)


def summarize(ctx: SearchContext, study, ref: dict, wall_s: float | None = None) -> dict:
    directions = ctx.search.directions
    trials = _trials(ctx, study)
    for t in trials:
        t["short_of"] = short_of(t["doc"], ctx.search.constraints) or off_the_gate(ctx, t, ref)
    fr = front([t for t in trials if not t["short_of"]], directions)
    front_names = {t["name"] for t in fr}
    rec = recommend_from(ctx, fr, ref)
    rec_name = (rec.get("recommended") or "/").split("/", 1)[1] or None
    rec_doc = next((t["doc"] for t in trials if t["name"] == rec_name), None)
    files = {"results": str(ctx.out / "results.json"), "markdown": str(ctx.out / "search.md")}
    if rec_doc is not None:
        write_text(ctx.out / "replay.yaml", replay_yaml(ctx, rec_doc))
        files["replay"] = str(ctx.out / "replay.yaml")
    fig = plot(trials, front_names, rec_name, ctx.out / "front.png")
    if fig:
        files["front_plot"] = str(fig)
    menu = menu_table(ctx, rec_doc, ref)
    doc = {
        "schema": RESULTS_SCHEMA, "run": str(ctx.run), "config": ctx.search.model_dump(mode="json"),
        "objectives": dict(zip(ctx.search.objectives, directions)),
        "latency_measured_on": {"host": platform.node(), "processor": platform.processor() or platform.machine(),
                                "trial_hosts": sorted({t["doc"].host for t in trials
                                                       if t["doc"] is not None and t["doc"].host}),
                                "threads": ctx.cfg.threads,
                                "trials_at_once": ctx.search.workers if ctx.search.executor == "ray" else 1,
                                "objective": "MMACs per prediction" if ctx.search.latency == "macs" else "p50 ms"},
        "wall_s": wall_s, "trials_finished": sum(1 for t in trials if t["state"] in ("complete", "fail", "failed")),
        "reference": {k: v.to_json() for k, v in ref.items()},
        "trials": [{k: v for k, v in t.items() if k != "doc"} | {"result": t["doc"] and t["doc"].to_json()}
                   for t in trials],
        "front": [t["name"] for t in fr], "recommendation": rec, "recommended": rec_name,
        "menu": menu[1] if menu else None, "files": files,
    }
    measured_on = f"{doc['latency_measured_on']['host']} ({doc['latency_measured_on']['processor']})"
    if ctx.cfg.target.device:  # the trials' latency is the device's brain step
        name = ctx.cfg.target.device.split("?", 1)[0]
        device = next((t["doc"].summary.target_device for t in trials if t["doc"] is not None
                       and t["doc"].summary is not None and t["doc"].summary.target_device), None)
        doc["latency_measured_on"]["target"] = {"name": name, "device": device}
        if ctx.search.latency != "macs":
            doc["latency_measured_on"]["objective"] = f"brain step p50 ms on {name}"
        measured_on = f"{name} ({device or 'no trial timed there yet'}), its brain step"
    write_json(ctx.out / "results.json", doc)
    md = [f"# pilotopt search over `{ctx.run}`", "",
          f"{doc['trials_finished']} trials, objectives: " + ", ".join(f"{k} ({v})" for k, v in doc["objectives"].items())
          + f"; latency measured on {measured_on}, "
          f"{doc['latency_measured_on']['trials_at_once']} trial(s) at once"
          + (f"; wall time {wall_s:.0f} s" if wall_s else "") + ".", "",
          "## Recommended", "", " ".join(rec.get("explanation", [])[-2:]) or "nothing passed the gates", ""]
    if menu:
        md += ["## The search against the run's fixed menu", "", menu[0], ""]
    md += ["## Pareto front", "", trial_table(fr, front_names), "", "## Every trial", "",
           trial_table(trials, front_names), "",
           "Fidelity: 1 = screened offline only, 2 = one drive, 3 = every repetition under every condition. "
           "Score (all conditions) is the mean over the default condition and each condition of the mean driving "
           "score; the CI is over the default condition's repetitions.", ""]
    sens = _read(ctx.out / "sensitivity.json")
    if sens is not None:
        from pilotopt.search.sensitivity import table  # it imports md_table from this module

        doc["sensitivity"] = sens
        write_json(ctx.out / "results.json", doc)
        md += [f"## Per-layer sensitivity by driving: {sens['chain']} ({sens['trial']})", "",
               f"All layers int8: score {sens['score_all_int8']:.1f}. Each row keeps one weight layer in float "
               "(`onnx_int8_static.keep_float`) and drives it with the whole protocol; most recovered first.", "",
               table(sens), ""]
    write_text(ctx.out / "search.md", "\n".join(md))
    return doc
