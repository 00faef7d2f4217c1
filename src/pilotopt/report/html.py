"""report.html: the same blocks as report.md in one self-contained file.

Opened from disk with no network: CSS and JS are inline and images are base64 data URIs. Every
table sorts when a header is clicked (numbers numerically, text naturally, nulls always last);
cells carry their raw value in data-sort so sorting never parses formatted text. All input text
is HTML-escaped (reasons can contain '<' and '&')."""

from __future__ import annotations

import base64
import os
from html import escape
from pathlib import Path
from urllib.parse import quote

from pilotopt.report.document import TITLE, Bullets, Gallery, Heading, Image, Link, Para
from pilotopt.report.tables import Table

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2em auto;max-width:1400px;
  padding:0 1em;color:#222;line-height:1.45}
h1{border-bottom:2px solid #444}h2{border-bottom:1px solid #bbb;margin-top:2em}
.wrap{overflow-x:auto}table{border-collapse:collapse;margin:.6em 0 1.2em;font-size:.85em}
caption{text-align:left;font-weight:600;padding:.2em 0}
th,td{border:1px solid #ccc;padding:.25em .5em;vertical-align:top}
th{background:#f0f0f0;cursor:pointer;user-select:none;white-space:nowrap}
th[aria-sort=ascending]::after{content:" \\25B2"}th[aria-sort=descending]::after{content:" \\25BC"}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr:nth-child(even) td{background:#fafafa}
figure{margin:1em 0}figure img{max-width:100%;border:1px solid #ddd}
figcaption{font-size:.85em;color:#555}
.gallery{display:grid;grid-template-columns:repeat(auto-fill,minmax(260px,1fr));gap:.6em}
.gallery figure{margin:0}.gallery figcaption{font-size:.75em}.strong{font-weight:700}.missing{color:#a00;font-style:italic}
"""

# Sort the clicked table by that column; a second click reverses. Nulls (empty data-sort) stay last.
JS = """
(function(){
  function cmp(a, b, numeric){
    if (numeric) return parseFloat(a) - parseFloat(b);
    return a.localeCompare(b, undefined, {numeric: true, sensitivity: 'base'});
  }
  function sortBy(table, col, th){
    var asc = th.getAttribute('aria-sort') !== 'ascending';
    var heads = table.tHead.rows[0].cells;
    for (var i = 0; i < heads.length; i++) heads[i].removeAttribute('aria-sort');
    th.setAttribute('aria-sort', asc ? 'ascending' : 'descending');
    var numeric = th.getAttribute('data-type') === 'num';
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function(r1, r2){
      var a = r1.cells[col].getAttribute('data-sort'), b = r2.cells[col].getAttribute('data-sort');
      var an = a === null || a === '', bn = b === null || b === '';
      if (an || bn) return an === bn ? 0 : (an ? 1 : -1);
      var c = cmp(a, b, numeric);
      return asc ? c : -c;
    });
    rows.forEach(function(r){ body.appendChild(r); });
  }
  var tables = document.querySelectorAll('table.sortable');
  Array.prototype.forEach.call(tables, function(table){
    var heads = table.tHead.rows[0].cells;
    Array.prototype.forEach.call(heads, function(th, col){
      th.addEventListener('click', function(){ sortBy(table, col, th); });
    });
  });
})();
"""


NUM_CLASS = ' class="num"'
STRONG_CLASS = ' class="strong"'


def _e(text) -> str:
    return escape(str(text), quote=True)


def data_uri(path: Path) -> str:
    mime = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif",
            ".svg": "image/svg+xml", ".webp": "image/webp"}.get(path.suffix.lower(), "application/octet-stream")
    return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _sort_value(col, row) -> str:
    v = col.value(row)
    if v is None:
        return ""
    if col.numeric:
        return repr(float(v))
    if isinstance(v, bool):
        return "yes" if v else "no"
    return str(v)


def render_table(t: Table) -> str:
    if not t.rows:
        return f'<p id="{_e(t.table_id)}" class="empty"><em>(no rows)</em></p>'
    out = [f'<div class="wrap"><table id="{_e(t.table_id)}" class="sortable">']
    if t.caption:
        out.append(f"<caption>{_e(t.caption)}</caption>")
    out.append("<thead><tr>" + "".join(
        f'<th data-type="{"num" if c.numeric else "text"}" title="click to sort">{_e(c.label)}</th>'
        for c in t.columns) + "</tr></thead><tbody>")
    for r in t.rows:
        out.append("<tr>" + "".join(
            f'<td{NUM_CLASS if c.numeric else ""} data-sort="{_e(_sort_value(c, r))}">{_e(c.format(r))}</td>'
            for c in t.columns) + "</tr>")
    out.append("</tbody></table></div>")
    return "\n".join(out)


def _rel(path: Path, out_dir: Path) -> str:
    try:
        rel = os.path.relpath(path, out_dir)
    except ValueError:
        rel = str(path)
    return quote(rel.replace(os.sep, "/"))


def _image(b: Image) -> str:
    if b.exists:
        return (f'<figure><img src="{data_uri(b.path)}" alt="{_e(b.alt)}">'
                f"<figcaption>{_e(b.caption)}</figcaption></figure>")
    return f'<p class="missing">{_e(b.caption)}: image not found ({_e(b.path)})</p>'


def render_html(blocks: list, out_dir: Path) -> str:
    body: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            body.append(f'<h{b.level} id="{_e(b.anchor)}">{_e(b.text)}</h{b.level}>')
        elif isinstance(b, Para):
            body.append(f'<p{STRONG_CLASS if b.strong else ""}>{_e(b.text)}</p>')
        elif isinstance(b, Bullets):
            body.append("<ul>" + "".join(f"<li>{_e(i)}</li>" for i in b.items) + "</ul>")
        elif isinstance(b, Table):
            body.append(render_table(b))
        elif isinstance(b, Image):
            body.append(_image(b))
        elif isinstance(b, Gallery):
            body.append('<div class="gallery">' + "".join(_image(i) for i in b.images) + "</div>")
        elif isinstance(b, Link):
            # a relative file link: the video stays next to the report instead of bloating it
            body.append(f'<p><a href="{_e(_rel(b.path, out_dir))}">{_e(b.text)}</a></p>')
        else:  # pragma: no cover - a new block type must get a renderer
            raise TypeError(f"no HTML renderer for {type(b).__name__}")
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{_e(TITLE)}</title>\n"
            f"<style>{CSS}</style>\n</head>\n<body>\n" + "\n".join(body)
            + f"\n<script>{JS}</script>\n</body>\n</html>\n")
