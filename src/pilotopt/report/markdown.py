"""report.md: the document blocks as GitHub-flavoured Markdown.

Text from inputs (reasons, descriptions, names) is escaped: '<' so a reason like '<lambda>' is not
read as an HTML tag, '|' and newlines so a table row stays one row."""

from __future__ import annotations

import os
from pathlib import Path

from pilotopt.report.document import Bullets, Gallery, Heading, Image, Link, Para
from pilotopt.report.tables import Table


def md_escape(text: str) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cell(text: str) -> str:
    return md_escape(" ".join(str(text).split())).replace("|", "\\|")


def _rel(path: Path, out_dir: Path) -> str:
    """A link target relative to the report folder (spaces encoded so the link stays one token)."""
    try:
        rel = os.path.relpath(path, out_dir)
    except ValueError:  # another drive (Windows)
        rel = str(path)
    return rel.replace(os.sep, "/").replace(" ", "%20")


def md_table(header: list[str], rows: list[list], numeric: list[bool] | None = None) -> list[str]:
    """The one Markdown table writer (the report, `pilotopt search` and `report publish`): cells
    escaped, numeric columns right-aligned."""
    if not rows:
        return ["*(no rows)*"]
    numeric = numeric or [False] * len(header)
    return ["| " + " | ".join(_cell(h) for h in header) + " |",
            "|" + "|".join("---:" if n else "---" for n in numeric) + "|",
            *("| " + " | ".join(_cell(x) for x in r) + " |" for r in rows)]


def render_table(t: Table) -> list[str]:
    return md_table([c.label for c in t.columns], [[c.format(r) for c in t.columns] for r in t.rows],
                    [c.numeric for c in t.columns])


def _image(b: Image, out_dir: Path) -> list[str]:
    if b.exists:
        return [f"![{_cell(b.alt)}]({_rel(b.path, out_dir)})", "", f"*{md_escape(b.caption)}*", ""]
    return [f"*{md_escape(b.caption)}: image not found ({md_escape(str(b.path))})*", ""]


def render_markdown(blocks: list, out_dir: Path) -> str:
    out: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            out += ["#" * b.level + " " + md_escape(b.text), ""]
        elif isinstance(b, Para):
            text = md_escape(b.text)
            out += [f"**{text}**" if b.strong else text, ""]
        elif isinstance(b, Bullets):
            out += [f"- {md_escape(' '.join(item.split()))}" for item in b.items] + [""]
        elif isinstance(b, Table):
            out += render_table(b) + [""]
        elif isinstance(b, Image):
            out += _image(b, out_dir)
        elif isinstance(b, Gallery):
            for img in b.images:
                out += _image(img, out_dir)
        elif isinstance(b, Link):
            out += [f"[{md_escape(b.text)}]({_rel(b.path, out_dir)})", ""]
        else:  # pragma: no cover - a new block type must get a renderer
            raise TypeError(f"no Markdown renderer for {type(b).__name__}")
    return "\n".join(out).rstrip() + "\n"
