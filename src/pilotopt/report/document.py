"""The report as a list of blocks that both report.md and report.html render, so the two files
cannot drift apart: a section added here appears in both."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pilotopt.report import pareto as pareto_mod
from pilotopt.report.recommend import display_names
from pilotopt.report.tables import (FRAMEWORK_LABELS, Table, chain_table, circuit_table, meta_table, offline_table,
                                    slower_int8, summary_table, technique_table)

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


def build_document(*, rows: list[dict], cl_rows: list[dict], tech_rows: list[dict], rec: dict,
                   figures: dict[str, Path | None], fronts: dict[str, list[str]], meta: dict | None,
                   out_dir: Path) -> list:
    """Blocks in reading order: overview, offline tables, techniques, closed loop, Pareto fronts,
    run information, and last the recommendation."""
    names = display_names(rows)
    blocks: list = [Heading(1, TITLE, "top")]
    offline = [r for r in rows if r["in_offline"]]
    counts = {s: sum(1 for r in offline if r["status"] == s) for s in ("ok", "failed", "skipped")}
    blocks.append(Para(rec["summary"], strong=True))
    blocks.append(Para(
        f"{len(offline)} variants evaluated offline ({counts['ok']} ok, {counts['failed']} failed, "
        f"{counts['skipped']} skipped); {len(tech_rows)} techniques asked for; {len(cl_rows)} closed-loop drives "
        f"on {len({d['circuit'] for d in cl_rows})} circuits. Lower is better for size, MSE, latency and deviation."))

    blocks.append(Heading(2, "Overview", "overview"))
    blocks.append(summary_table(rows))

    blocks.append(Heading(2, "Offline evaluation", "offline"))
    blocks.append(Para("Model size on disk, MSE over the normalised (v, w) labels of the test set, and the "
                       "latency of one batch-1 model call (median), per framework as in the study's tables."))
    frameworks: list[str] = []
    for r in offline:
        if (r.get("framework") or "") not in frameworks:
            frameworks.append(r.get("framework") or "")
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
    slow = slower_int8([r for r in offline if r["status"] == "ok"])
    if slow:
        blocks.append(Heading(3, "Int8 slower than fp32", "slower-int8"))
        blocks.append(Bullets(tuple(slow)))

    blocks.append(Heading(2, "Closed loop", "closed-loop"))
    circuits: list[str] = []
    for d in cl_rows:
        if d["circuit"] not in circuits:
            circuits.append(d["circuit"])
    if not circuits:
        blocks.append(Para("No closed-loop drives."))
    for circuit in circuits:
        anchor = f"circuit-{_slug(circuit)}"
        blocks.append(Heading(3, f"Circuit: {circuit}", anchor))
        blocks.append(circuit_table(cl_rows, circuit, anchor))
        for d in (d for d in cl_rows if d["circuit"] == circuit):
            what = f"{d['variant']} on {circuit} ({d.get('direction') or 'default direction'})"
            if d.get("plot"):
                p = resolve(d["plot"], out_dir)
                blocks.append(Image(p, f"trajectory: {what}", f"Trajectory: {what}", p.is_file()))
            if d.get("video"):
                p = resolve(d["video"], out_dir)
                blocks.append(Link(f"Video: {what}", p, "video"))

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

    blocks.append(Heading(2, "Run information", "meta"))
    if meta and meta.get("baseline"):
        blocks.append(Para(f"Baseline: {meta['baseline']}.", strong=True))
    if meta:
        blocks.append(meta_table(meta))
    else:
        blocks.append(Para("No run information given."))

    blocks.append(Heading(2, "Recommendation", "recommendation"))
    blocks.append(Para(rec["summary"], strong=True))
    blocks.append(Bullets(tuple(rec["explanation"])))
    return blocks


__all__ = ["Bullets", "Heading", "Image", "Link", "Para", "Table", "build_document", "resolve"]
