"""The report: one folder that says which variant to deploy (SPEC section 7).

`build_report(offline, closed_loop, techniques, out_dir, constraints=None, meta=None)` writes

- results.json  schema "pilotopt.report/2": variants (flat rows), offline (the source document's
                context + its rows), closed_loop, techniques, pareto, recommendation, meta, files
- results.csv   one row per variant (tables.CSV_COLUMNS): offline numbers + closed-loop aggregates
- report.md     study-style tables, techniques, closed loop per circuit, Pareto plots, recommendation
- report.html   the same content, self-contained (inline CSS/JS, images as data URIs), sortable tables
- figures/pareto_latency_mse.png, figures/pareto_size_mse.png (when any variant is ok)

Every file is written atomically, and the output is a pure function of the inputs (no clock, sorted
JSON keys), so two runs over the same results give identical files.

Inputs: `offline` is a pilotopt.results/1 document (or its "variants" list of `records.OfflineRow`
dicts, or None); `closed_loop` a list of `records.Drive` dicts (or Drives);
`techniques` a list of {name, framework, status, reason, description}; `constraints` a dict /
`Constraints` {max_latency_ms, max_size_mb, must_complete, mse_tolerance}; `meta` any JSON-able dict.
"""

from __future__ import annotations

import csv
import enum
import io
import json
import math
from pathlib import Path
from typing import Any

from pilotopt.atomic import atomic_path, ensure_writable_dir, write_text
from pilotopt.sim.score import FORMULAS
from pilotopt.report import pareto
from pilotopt.report.document import build_document
from pilotopt.report.figures import breaking_plot, correlation_plot, decision_plot, heatmap
from pilotopt.report.html import render_html
from pilotopt.report.markdown import render_markdown
from pilotopt.decide import Constraints, recommend
from pilotopt.decide.pareto import FRONTS as PARETO_FRONTS
from pilotopt.decide.verdict import DecidedVariant, decide
from pilotopt.records import BreakingPointRecord, drives_of, offline_rows
from pilotopt.report.tables import CSV_COLUMNS, check_techniques, closed_loop_rows, technique_rows

REPORT_SCHEMA = "pilotopt.report/2"
RESULTS_JSON = "results.json"
RESULTS_CSV = "results.csv"
REPORT_MD = "report.md"
REPORT_HTML = "report.html"
FIGURES_DIR = "figures"

__all__ = ["Constraints", "REPORT_SCHEMA", "build_report", "recommend"]


def plain(obj: Any) -> Any:
    """JSON-safe copy: Paths and enums as text, numpy scalars/arrays as Python, NaN/inf as null
    (strict JSON has no NaN, and a NaN metric means 'not measured')."""
    if isinstance(obj, dict):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    if isinstance(obj, bool) or obj is None or isinstance(obj, (int, str)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, enum.Enum):
        return plain(obj.value)
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist"):  # numpy scalar or array
        return plain(obj.tolist())
    return str(obj)


def _csv_value(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, (list, tuple)):
        return ";".join(str(x) for x in v)
    return str(v)


def to_csv(rows: list[DecidedVariant]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for r in rows:
        j = r.to_json()
        w.writerow([_csv_value(j[c]) for c in CSV_COLUMNS])
    return buf.getvalue()


def _csv_fields(r: DecidedVariant) -> dict:
    j = r.to_json()
    return {c: j[c] for c in ("key", *CSV_COLUMNS)}


def build_report(offline: Any, closed_loop: list[dict] | None, techniques: list[dict] | None,
                 out_dir: Path | str, constraints: Any = None, meta: dict | None = None,
                 search: dict | None = None, breaking_points: list[dict] | None = None) -> dict[str, Path]:
    """Write the report folder and return {what: path} of every file written (see module doc).
    `search`: a `pilotopt search` results.json, shown as its own section; `breaking_points`: the
    records of pipeline.breaking (the largest clean slow-down of the decision's variants)."""
    out_dir = ensure_writable_dir(Path(out_dir))
    source = offline if isinstance(offline, dict) else {}
    off = offline_rows(offline)
    drives = drives_of(closed_loop)
    techs = check_techniques(techniques)
    breaking = [BreakingPointRecord.from_json(b, f"breaking point {i}") if isinstance(b, dict) else b
                for i, b in enumerate(breaking_points or [])]
    decision = decide(off, drives, constraints, peaks=source.get("machine_peaks"), breaking_points=breaking)
    rows, rec, conditions = decision.variants, decision.recommendation, decision.conditions
    cl_rows = closed_loop_rows(drives)
    tech_rows = technique_rows(techs, rows)

    written: dict[str, Path] = {}
    figures: dict[str, Path | None] = {}
    for stem, x_key, x_label in PARETO_FRONTS:
        fig = pareto.plot_front(rows, x_key, x_label, out_dir / FIGURES_DIR / f"{stem}.png",
                                f"{x_label} vs MSE: Pareto front")
        figures[stem] = fig
        if fig is not None:
            written[stem] = fig
        else:  # nothing ok to plot: drop a figure left by an earlier build so no stale plot survives
            (out_dir / FIGURES_DIR / f"{stem}.png").unlink(missing_ok=True)

    for stem, draw in (("decision", lambda p: decision_plot(rows, rec, p)),
                       ("heatmap", lambda p: heatmap(rows, conditions, p)),
                       ("correlation", lambda p: correlation_plot(rows, p)),
                       ("breaking", lambda p: breaking_plot(breaking, p))):
        target = out_dir / FIGURES_DIR / f"{stem}.png"
        fig = draw(target)
        figures[stem] = fig
        if fig is not None:
            written[stem] = fig
        else:
            target.unlink(missing_ok=True)

    target = out_dir / FIGURES_DIR / "search_front.png"
    front_png = Path((search or {}).get("files", {}).get("front_plot") or "")
    if search is not None and front_png.is_file():
        import shutil

        with atomic_path(target) as tmp:
            shutil.copyfile(front_png, tmp)
        figures["search_front"] = written["search_front"] = target
    else:
        target.unlink(missing_ok=True)
    blocks = build_document(rows=rows, cl_rows=cl_rows, tech_rows=tech_rows, rec=rec, figures=figures,
                            fronts=decision.fronts, meta=meta, out_dir=out_dir, conditions=conditions,
                            predictive=decision.predictive, search=search)
    write_text(out_dir / REPORT_MD, render_markdown(blocks, out_dir))
    written["report_md"] = out_dir / REPORT_MD
    write_text(out_dir / REPORT_HTML, render_html(blocks, out_dir))
    written["report_html"] = out_dir / REPORT_HTML
    write_text(out_dir / RESULTS_CSV, to_csv(rows))
    written["results_csv"] = out_dir / RESULTS_CSV

    written["results_json"] = out_dir / RESULTS_JSON
    doc = {
        "schema": REPORT_SCHEMA,
        "constraints": decision.constraints.to_dict(),
        "variants": [_csv_fields(r) for r in rows],
        "offline": {"schema": source.get("schema"),
                    **{k: source.get(k) for k in ("created", "machine", "protocol", "testset", "machine_peaks", "target")
                       if k in source},
                    "rows": [r.to_json() for r in off]},
        "closed_loop": [d.to_json() for d in drives],
        "techniques": techs,
        "pareto": decision.fronts,
        "recommendation": rec,
        "conditions": {c: [{"key": r.key, **r.cl_conditions[c].to_json()} for r in rows if c in r.cl_conditions]
                       for c in conditions},
        "predictive": decision.predictive,
        "breaking_points": [b.to_json() for b in breaking],
        "search": {k: (search or {}).get(k) for k in ("trials_finished", "front", "recommended", "menu", "wall_s")}
        if search is not None else None,
        "score_formulas": FORMULAS,
        "meta": meta or {},
        "files": {k: p.relative_to(out_dir).as_posix() for k, p in sorted(written.items())},
    }
    write_text(out_dir / RESULTS_JSON, json.dumps(plain(doc), indent=2, sort_keys=True, allow_nan=False) + "\n")
    return dict(sorted(written.items()))
