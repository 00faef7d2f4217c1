"""The report as a list of blocks that both report.md and report.html render, so the two files
cannot drift apart: a section added here appears in both."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pilotopt.decide import pareto as pareto_mod
from pilotopt.decide.verdict import DecidedVariant
from pilotopt.records import SearchTrial
from pilotopt.report.decision import (candidates_table, condition_table, decision_table, divergence_table,
                                      driving_failures, failures_table, predictive_text)
from pilotopt.report.tables import (FRAMEWORK_LABELS, Column, Table, chain_table, circuit_table, meta_table, offline_table,
                                    slower_int8, technique_table)
from pilotopt.sim.score import FORMULAS

TITLE = "pilotopt report"


@dataclass(frozen=True)
class Heading:
    level: int
    text: str
    anchor: str


@dataclass(frozen=True)
class Para:
    text: str
    strong: bool = False


@dataclass(frozen=True)
class Bullets:
    items: tuple[str, ...]


@dataclass(frozen=True)
class Image:
    """`path` is absolute; `exists` is checked once so both renderers agree on a missing file."""

    path: Path
    alt: str
    caption: str
    exists: bool


@dataclass(frozen=True)
class Gallery:
    """Small multiples: images shown side by side at thumbnail size."""

    images: tuple


@dataclass(frozen=True)
class Link:
    text: str
    path: Path
    label: str


def resolve(path: str | Path, out_dir: Path) -> Path:
    """Closed-loop plot/video paths are relative to the report folder or absolute."""
    p = Path(path)
    return p if p.is_absolute() else (out_dir / p)


def _slug(text: str) -> str:
    out = "".join(ch if ch.isalnum() else "-" for ch in text.lower())
    return "-".join(part for part in out.split("-") if part)


def build_document(*, rows: list[DecidedVariant], cl_rows: list[dict], tech_rows: list[dict], rec: dict,
                   figures: dict[str, Path | None], fronts: dict[str, list[str]], meta: dict | None,
                   out_dir: Path, conditions: list[str] | None = None, predictive: dict | None = None,
                   search: dict | None = None) -> list:
    """Blocks in reading order: the decision (recommendation against the baseline, the speed vs
    driving plot, the rule), the candidates, robustness under conditions, whether offline error
    predicts driving, then the offline tables, techniques, failures, closed-loop drives, Pareto
    fronts, the formulas and the run information."""
    names = rec["names"]
    blocks: list = [Heading(1, TITLE, "top")]
    offline = [r for r in rows if r.in_offline]
    counts = {s: sum(1 for r in offline if r.status == s) for s in ("ok", "failed", "skipped")}
    blocks.append(Para(rec["summary"], strong=True))
    blocks.append(Para(
        f"{len(offline)} variants evaluated offline ({counts['ok']} ok, {counts['failed']} failed, "
        f"{counts['skipped']} skipped); {len(tech_rows)} techniques asked for; {len(cl_rows)} closed-loop drives "
        f"on {len({d['circuit'] for d in cl_rows})} circuit(s) under {len(conditions or ['default'])} condition(s). "
        "Lower is better for size, MSE, latency and deviation; higher for the driving score and autonomy."))

    blocks.append(Heading(2, "Decision", "decision"))
    blocks.append(decision_table(rows, rec))
    fig = figures.get("decision")
    if fig is not None:
        blocks.append(Image(fig, "latency against driving score", "Inference time against driving score (95 % "
                            "interval over repetitions); the star is the recommendation, squares the baselines, "
                            "the red line the variants nothing faster drives better than.", fig.is_file()))
    blocks.append(Bullets(tuple(rec["explanation"])))
    fig = figures.get("breaking")
    if fig is not None:
        blocks.append(Image(fig, "breaking points", "Breaking points: the driving score of the recommended "
                            "variant, the runner-up and the baselines as their latency grows (hardware N x slower), "
                            "doubled until a drive fails, then bisected; 'Drives on HW N x slower' in the table "
                            "above is the last scale at which every drive was a clean lap.", fig.is_file()))

    blocks.append(Heading(2, "Candidates", "candidates"))
    blocks.append(candidates_table(rows))
    chosen = next((r for r in rows if r.recommended), None)
    if chosen is not None and chosen.cl_score_mean is not None:
        same = [names[r.key] for r in rows if r.score_overlaps_chosen]
        blocks.append(Para(
            f"Driving-score intervals that overlap {names[chosen.key]}'s: "
            + (", ".join(same) + ": their difference in driving from it is not significant at these repetitions."
               if same else "none: every other driven variant drives measurably better or worse.")))

    fails = driving_failures(rows)
    if fails:
        blocks.append(Heading(3, "Variants that did not drive every lap cleanly", "not-clean"))
        blocks.append(Bullets(tuple(fails)))

    conditions = list(conditions or [])
    if len(conditions) > 1:
        blocks.append(Heading(2, "Robustness: conditions and slower hardware", "robustness"))
        blocks.append(Para("The baselines and the best candidates, driven under each condition: the world's look, "
                           "camera noise as Behavior Metrics adds it, and hardware N times slower (realtime latency "
                           "x N). 'Drives on HW N x slower' is the largest tested slow-down at which every drive "
                           "is a clean lap."))
        fig = figures.get("heatmap")
        if fig is not None:
            blocks.append(Image(fig, "driving score heatmap", "Driving score by variant and condition", fig.is_file()))
        table = condition_table(rows, conditions)
        if table is not None:
            blocks.append(table)

    if predictive is not None and predictive.get("n", 0) >= 3:
        blocks.append(Heading(2, "Does offline error predict driving?", "predictive"))
        fig = figures.get("correlation")
        if fig is not None:
            blocks.append(Image(fig, "MSE against driving", "Offline MSE against driving score and autonomy, one "
                                "point per driven variant", fig.is_file()))
        blocks.append(Bullets(tuple(predictive_text(predictive))))
        table = divergence_table(predictive)
        if table is not None:
            blocks.append(table)

    if search is not None:
        blocks += search_blocks(search, figures.get("search_front"))

    blocks.append(Heading(2, "Offline evaluation", "offline"))
    blocks.append(Para("Model size on disk, MSE over the normalised (v, w) labels of the test set, and the "
                       "latency of one batch-1 model call (median), per framework as in the study's tables."))
    frameworks: list[str] = []
    for r in offline:
        if (r.framework or "") not in frameworks:
            frameworks.append(r.framework or "")
    if not frameworks:
        blocks.append(Para("No offline results."))
    for fw in frameworks:
        label = FRAMEWORK_LABELS.get(fw, fw or "unknown framework")
        blocks.append(Heading(3, label, f"offline-{_slug(fw or 'unknown')}"))
        blocks.append(offline_table(rows, fw, f"offline-{_slug(fw or 'unknown')}"))

    blocks.append(Heading(2, "Techniques", "techniques"))
    if tech_rows:
        blocks.append(technique_table(tech_rows))
    else:
        blocks.append(Para("No technique list was given."))

    chains = chain_table(offline)
    if chains is not None:
        blocks.append(Heading(3, "Chains", "chains"))
        blocks.append(chains)
    slow = slower_int8([r for r in offline if r.status == "ok"])
    if slow:
        blocks.append(Heading(3, "Int8 slower than fp32", "slower-int8"))
        blocks.append(Bullets(tuple(slow)))
    failures = failures_table(rows, tech_rows)
    if failures is not None:
        blocks.append(Heading(3, "Failed and skipped", "failed"))
        blocks.append(failures)

    blocks.append(Heading(2, "Closed loop", "closed-loop"))
    first = [d for d in cl_rows if d.get("condition", "default") == "default" and not d.get("repetition")]
    circuits: list[str] = []
    for d in first:
        if d["circuit"] not in circuits:
            circuits.append(d["circuit"])
    if not circuits:
        blocks.append(Para("No closed-loop drives."))
    else:
        blocks.append(Para("The first drive of each variant in the default condition, per circuit (the study's "
                           "table form); the report's other figures are over every repetition."))
    for circuit in circuits:
        anchor = f"circuit-{_slug(circuit)}"
        blocks.append(Heading(3, f"Circuit: {circuit}", anchor))
        blocks.append(circuit_table(first, circuit, anchor))
        thumbs, links = [], []
        for d in (d for d in first if d["circuit"] == circuit):
            what = f"{d['variant']} on {circuit} ({d.get('direction') or 'default direction'})"
            if d.get("plot"):
                p = resolve(d["plot"], out_dir)
                thumbs.append(Image(p, f"trajectory: {what}", what, p.is_file()))
            if d.get("video"):
                links.append(Link(f"Video: {what}", resolve(d["video"], out_dir), "video"))
        if thumbs:
            blocks.append(Gallery(tuple(thumbs)))
        blocks.extend(links)

    blocks.append(Heading(2, "Pareto fronts", "pareto"))
    blocks.append(Para("Each point is a variant with status ok; the red staircase joins the variants no other "
                       "variant beats on both axes (lower-left is better)."))
    for stem, _x_key, x_label in pareto_mod.FRONTS:
        fig = figures.get(stem)
        title = f"{x_label} vs MSE"
        if fig is not None:
            blocks.append(Image(fig, f"Pareto front: {title}", f"Pareto front: {title}", fig.is_file()))
        front = [names[k] for k in fronts.get(stem, [])]
        blocks.append(Para(f"Front ({title}): " + (", ".join(front) if front else "no ok variant to plot") + "."))

    blocks.append(Heading(2, "Driving score and autonomy", "formulas"))
    blocks.append(Bullets(tuple(f"{k}: {v}" for k, v in FORMULAS.items())))

    blocks.append(Heading(2, "Run information", "meta"))
    if meta and meta.get("baseline"):
        blocks.append(Para(f"Baseline: {meta['baseline']}.", strong=True))
    if meta:
        blocks.append(meta_table(meta))
    else:
        blocks.append(Para("No run information given."))
    return blocks


__all__ = ["Bullets", "Gallery", "Heading", "Image", "Link", "Para", "Table", "build_document", "resolve"]


def search_blocks(search: dict, figure: Path | None) -> list:
    """`pilotopt search`'s Pareto front (plot and table) and its per-layer sensitivity, from its
    results.json."""
    by_name = {t["name"]: t for t in search.get("trials", [])}
    cols = [Column("chain", "chain"), Column("settings", "settings"), Column("score", "score (all conditions)", ".1f"),
            Column("cl_score_mean", "score default", ".1f"), Column("cl_score_lo", "lo", ".1f"),
            Column("cl_score_hi", "hi", ".1f"), Column("latency_p50_ms", "p50 ms", ".3f"),
            Column("size_mb", "MB", ".3f"), Column("mse_ratio", "MSE ratio", ".2f")]
    rows = []
    for name in search.get("front", []):
        result = (by_name.get(name) or {}).get("result")
        if not result:
            continue
        t = SearchTrial.from_json(result, f"search trial {name}")
        m = t.summary
        st = t.candidate.get("settings") or {}
        rows.append({"chain": ("★ " if name == search.get("recommended") else "") + t.chain,
                     "settings": ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                                           for s in st.values() for k, v in s.items()) or "-",
                     "score": t.score, "mse_ratio": t.mse_ratio, "cl_score_mean": m and m.cl_score_mean,
                     "cl_score_lo": m and m.cl_score_lo, "cl_score_hi": m and m.cl_score_hi,
                     "latency_p50_ms": m and m.latency_p50_ms, "size_mb": m and m.size_mb})
    out: list = [Heading(2, "Search", "search"),
                 Para(f"`pilotopt search` finished {search.get('trials_finished')} trials"
                      + (f" in {search['wall_s']:.0f} s" if search.get("wall_s") else "")
                      + f"; {len(rows)} on the Pareto front of {', '.join(search.get('objectives', {}))}. "
                      + "The star is its recommendation by the rule above, over the front and the baselines.")]
    menu = search.get("menu") or {}
    if menu:
        out.append(Para("Against the fixed menu: " + ", ".join(
            f"{k.replace('_', ' ')}: {'yes' if v else 'no'}" for k, v in menu.items() if isinstance(v, bool)) + "."))
    if figure is not None:
        out.append(Image(figure, "search trials", "Every search trial, latency against driving score; the front in "
                         "red, the recommendation circled.", figure.is_file()))
    out.append(Table("search-front", cols, rows, caption="The search's Pareto front"))
    sens = search.get("sensitivity")
    if sens:
        out.append(Heading(3, f"Per-layer sensitivity by driving: {sens['chain']}", "search-sensitivity"))
        out.append(Table("search-sensitivity", [Column("layer", "layer kept in float"), Column("score", "score", ".1f"),
                                                Column("score_change", "change vs all int8", "+.1f"),
                                                Column("mse_ratio", "MSE ratio", ".3f"),
                                                Column("latency_p50_ms", "p50 ms", ".3f")], sens["layers"],
                         caption=f"All int8: score {sens['score_all_int8']:.1f}; most recovered first"))
    return out
