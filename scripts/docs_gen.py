"""The generated pages of the documentation site, so that none of them can drift from the code.

- `reference/cli.md`: every command and sub-command of the `pilotopt` Typer app (its click command
  tree), with its help and every option as `--help` prints it.
- `reference/technique-settings.md`: every registered technique and chain, and each one's settings
  from their declarations (`setting(default, description, bounds)` in its settings dataclass: name,
  type, default, allowed values, description).
- `reference/python-api.md`: the Python entry points listed in `API`, with their signatures,
  docstrings and (for dataclasses) fields.

Used two ways:

- as a MkDocs hook (`hooks:` in mkdocs.yml): `mkdocs build` adds the pages to the site as it
  builds, and a placeholder for each figure of `docs/img/` that `scripts/docs_images.py` has not
  copied yet (logged at INFO, not a warning, so `--strict` still passes before the first demo run);
- as a script: `python scripts/docs_gen.py --out DIR` writes the pages into DIR to read them.

tests/test_docs.py checks `cli_reference()` against the command tree, walked on its own."""

from __future__ import annotations

import argparse
import dataclasses
import io
import logging
import re
import tokenize
import typing
from pathlib import Path

log = logging.getLogger("mkdocs.hooks.docs_gen")

CLI_PAGE = "reference/cli.md"
SETTINGS_PAGE = "reference/technique-settings.md"
API_PAGE = "reference/python-api.md"
# the Python entry points the API reference shows, by section: "module:name"
API = {
    "Simulator and closed loop": ["pilotopt.sim.closed_loop:drive", "pilotopt.sim.closed_loop:DriveConfig",
                                  "pilotopt.sim.brains:make_brain", "pilotopt.sim.brains.model:ModelBrain",
                                  "pilotopt.sim.plots:plot_trajectory"],
    "Data and training": ["pilotopt.data:DataConfig", "pilotopt.data:load_splits", "pilotopt.train:TrainConfig",
                          "pilotopt.train:train"],
    "Models, contracts and runtimes": ["pilotopt.artifacts:open_artifact", "pilotopt.artifacts:detect_kind",
                                       "pilotopt.contracts:load_contract", "pilotopt.runtimes:load_predictor"],
    "Techniques and evaluation": ["pilotopt.techniques:techniques", "pilotopt.techniques:optimize",
                                  "pilotopt.evaluate.harness:evaluate_artifacts"],
    "Pipeline, report and deploy": ["pilotopt.pipeline.config:load_config", "pilotopt.pipeline.run:run_pipeline",
                                    "pilotopt.report:build_report", "pilotopt.deploy:deploy_variant"],
    "Search": ["pilotopt.search:run_search"],
}
# figures of a finished run copied by scripts/docs_images.py: docs path -> what it shows
FIGURES = {"img/decision.png": "the report's decision figure", "img/robustness.png": "the robustness heatmap"}


# -- the command tree ------------------------------------------------------------------------------
def root_command():
    """The click command of the `pilotopt` app, every sub-command registered."""
    import typer.main

    import pilotopt.cli as cli

    if not cli.app.registered_commands and not cli.app.registered_groups:
        cli._register_commands()  # what `main()` does before it runs the app
    return typer.main.get_command(cli.app)


def command_tree():
    """[(path, command, context)] depth first: ("pilotopt",), ("pilotopt", "run"), ..."""
    out = []

    def walk(cmd, path, parent):
        ctx = cmd.make_context(path[-1], [], parent=parent, resilient_parsing=True)
        out.append((path, cmd, ctx))
        for name in (cmd.list_commands(ctx) if hasattr(cmd, "list_commands") else []):
            sub = cmd.get_command(ctx, name)
            if sub is not None and not getattr(sub, "hidden", False):
                walk(sub, (*path, name), ctx)

    walk(root_command(), ("pilotopt",), None)
    return out


def options_of(cmd, ctx) -> set[str]:
    """Every spelling of every option of one command (`--help` included)."""
    names = set()
    for p in cmd.get_params(ctx):
        if p.param_type_name == "option":
            names.update(o for o in (*p.opts, *p.secondary_opts) if o.startswith("--"))
    return names


def all_options() -> set[str]:
    """Every option of every command of the tree."""
    names = set()
    for _, cmd, ctx in command_tree():
        names |= options_of(cmd, ctx)
    return names


# -- markdown helpers ------------------------------------------------------------------------------
def md_text(text: str, table: bool = False) -> str:
    """Help text as markdown: code spans kept as they are, HTML and emphasis characters escaped
    outside them (and table pipes, for a table cell)."""
    parts = re.split(r"(`[^`]*`)", text)
    for i, part in enumerate(parts):
        if not part.startswith("`"):
            part = (part.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
                    .replace("*", r"\*").replace("_", r"\_"))
            parts[i] = part.replace("|", r"\|") if table else part
    return "".join(parts)


def md_cell(text: str) -> str:
    return md_text(" ".join(str(text).split()), table=True)


def code(text: str) -> str:
    """A code span (a table's pipes need no escape inside one)."""
    text = " ".join(str(text).split())
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def paragraphs(text: str) -> list[str]:
    return [" ".join(p.split()) for p in re.split(r"\n\s*\n", (text or "").strip()) if p.strip()]


def slug(path: tuple[str, ...]) -> str:
    return "-".join(path)


# -- the CLI reference -----------------------------------------------------------------------------
def cli_reference() -> str:
    tree = command_tree()
    lines = ["# CLI reference", "",
             "Generated from the `pilotopt` command tree by `scripts/docs_gen.py` each time the site is "
             "built: every command, its help and every option, as `--help` prints them. "
             "Bad input prints one `error: ...` line and exits with status 2; set `PILOTOPT_DEBUG=1` "
             "for a traceback.", ""]
    lines += ["| command | what it does |", "| --- | --- |"]
    for path, cmd, _ in tree[1:]:
        short = cmd.get_short_help_str(limit=1000)
        lines.append(f"| [`{' '.join(path)}`](#{slug(path)}) | {md_cell(short)} |")
    lines.append("")
    for path, cmd, ctx in tree:
        depth = len(path)
        level = "##" if depth <= 2 else "###"
        lines += [f"{level} {' '.join(path)}", ""]
        for para in paragraphs(cmd.help or ""):
            lines += [md_text(para), ""]
        usage = " ".join([*path, *cmd.collect_usage_pieces(ctx)])
        lines += ["```text", usage, "```", ""]
        subs = [(p, c) for p, c, _ in tree if len(p) == depth + 1 and p[:depth] == path]
        if subs:
            lines += ["| command | what it does |", "| --- | --- |"]
            lines += [f"| [`{' '.join(p)}`](#{slug(p)}) | {md_cell(c.get_short_help_str(limit=1000))} |"
                      for p, c in subs]
            lines.append("")
        records = [p.get_help_record(ctx) for p in cmd.get_params(ctx)]
        records = [r for r in records if r]
        if records:
            lines += ["| option | help |", "| --- | --- |"]
            lines += [f"| {code(decl)} | {md_cell(help_)} |" for decl, help_ in records]
            lines.append("")
    return "\n".join(lines)


# -- the technique settings ------------------------------------------------------------------------
def field_comments(cls) -> dict[str, str]:
    """{field: the comment on its declaration line}, searched from `cls` up its bases (a subclass
    that redeclares a field without a comment keeps its base's)."""
    import inspect
    import textwrap

    found: dict[str, str] = {}
    for klass in cls.__mro__:
        if klass is object or not dataclasses.is_dataclass(klass):
            continue
        try:
            source = textwrap.dedent(inspect.getsource(klass))
        except (OSError, TypeError):
            continue
        own = set(klass.__dict__.get("__annotations__", {}))
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
        by_line: dict[int, list] = {}
        for tok in tokens:
            by_line.setdefault(tok.start[0], []).append(tok)
        for toks in by_line.values():
            sig = [t for t in toks if t.type not in (tokenize.INDENT, tokenize.DEDENT, tokenize.NL,
                                                       tokenize.NEWLINE)]
            if (len(sig) >= 3 and sig[0].type == tokenize.NAME and sig[0].start[1] > 0
                    and sig[1].string == ":" and sig[0].string in own and sig[-1].type == tokenize.COMMENT):
                found.setdefault(sig[0].string, sig[-1].string.lstrip("#").strip())
    return found


def type_name(hint) -> str:
    if isinstance(hint, type):
        return hint.__name__
    return str(hint).replace("typing.", "")


def default_text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, str):
        return value if value else '""'
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(default_text(v) for v in value) + "]"
    return repr(value)


def settings_rows(tech) -> list[tuple[str, str, str, str, str]]:
    """(name, type, default, allowed values, description) of each setting of one technique or
    registered chain, from its declarations (pilotopt.techniques._settings)."""
    return [(p.name, p.type_name, p.default_text, p.bounds, p.description) for p in tech.settings]


def settings_reference() -> str:
    from pilotopt.techniques._core import techniques

    known = techniques()
    lines = ["# Technique settings", "",
             "Generated from the registered techniques and their settings declarations by "
             "`scripts/docs_gen.py` each time the site is built (`pilotopt list techniques` shows the same "
             "list, with whether each one can run on this machine; `pilotopt list techniques --settings` "
             "every setting, from the same declarations). A setting is given as "
             "`--set technique.key=value` or in a `--config` YAML (`{technique: {key: value}}`, "
             "`technique_settings:` in a `pilotopt run` config); an unknown technique or key is a "
             "one-line error before any work. A key under `technique_defaults:` goes to every technique "
             "that has it and must be a setting of at least one (a misspelled key names the closest one). "
             "One knob has one name: `calibration_frames` for every technique that calibrates "
             "(`representative_frames` and `subset_size`, its old names, still work in this release, with a "
             "warning). The pipeline's profiles change a few defaults "
             "(see [the report page](../report.md#profiles-and-the-run-config)).", "",
             "| technique | framework | runtime | training data | what it does |",
             "| --- | --- | --- | --- | --- |"]
    for name, t in known.items():
        data = "yes" if t.needs_data else ""
        lines.append(f"| [`{name}`](#{name}) | {t.framework} | {t.runtime} | {data} | {md_cell(t.description)} |")
    lines.append("")
    for name, t in known.items():
        lines += [f"## {name}", "", md_text(t.description) + ".", ""]
        takes = ", ".join(f"`{k}`" for k in t.accepts)
        facts = [f"framework `{t.framework}`, runtime `{t.runtime}`" + (", fine-tunes or calibrates on the "
                                                                       "training split" if t.needs_data else ""),
                 f"takes {takes}; writes `{t.produces}`"]
        if t.steps:
            facts.append("a registered chain: " + " > ".join(f"`{s}`" for s in t.steps)
                         + " (a key given for the chain goes to every step that has it)")
        if t.finish:
            facts.append(f"alone or at the end of a chain it is finished by `{t.finish}`")
        if t.conversion:
            facts.append("a plain conversion, which a chain inserts by itself where it bridges two steps")
        if t.tolerance is not None:
            facts.append(f"its outputs must stay within {t.tolerance:g} of its input model's on the check frames")
        lines += [f"- {f}" for f in facts] + [""]
        for step, own in (t.step_settings or {}).items():
            if own:
                pairs = ", ".join(f"`{k}: {default_text(v)}`" for k, v in own.items())
                lines += [f"The chain's own settings for `{step}`: {pairs}.", ""]
        rows = settings_rows(t)
        if not rows:
            lines += ["No settings.", ""]
            continue
        lines += ["| setting | type | default | allowed | description |", "| --- | --- | --- | --- | --- |"]
        lines += [f"| {code(n)} | {code(ty)} | {code(d)} | {md_cell(b)} | {md_cell(desc)} |"
                  for n, ty, d, b, desc in rows]
        lines.append("")
    return "\n".join(lines)


# -- the Python API reference ----------------------------------------------------------------------
def doc_markdown(doc: str) -> list[str]:
    """A docstring as markdown paragraphs; lines starting with '- ' stay list items."""
    out = []
    for para in re.split(r"\n\s*\n", doc.strip()):
        lines = para.splitlines()
        if lines and lines[0].lstrip().startswith("- "):
            items: list[str] = []
            for line in lines:
                if line.lstrip().startswith("- "):
                    items.append(line.strip()[2:])
                elif items:
                    items[-1] += " " + line.strip()
            out += [f"- {md_text(' '.join(i.split()))}" for i in items] + [""]
        else:
            out += [md_text(" ".join(para.split())), ""]
    return out


def api_reference() -> str:
    import importlib
    import inspect

    lines = ["# Python API reference", "",
             "Generated from the code by `scripts/docs_gen.py` each time the site is built: the entry "
             "points the CLI is made of, with their signatures and docstrings. Examples are on the "
             "[Python API](../python-api.md) page.", ""]
    for section, items in API.items():
        lines += [f"## {section}", ""]
        for item in items:
            module, name = item.split(":")
            obj = getattr(importlib.import_module(module), name)
            lines += [f"### {name}", "", f"`from {module} import {name}`", ""]
            is_dc = dataclasses.is_dataclass(obj) and isinstance(obj, type)
            if not is_dc:
                sig = str(inspect.signature(obj)).replace("'", "")
                lines += ["```python", f"{name}{sig}", "```", ""]
            doc = inspect.getdoc(obj) or ""
            if is_dc and doc.startswith(f"{name}("):
                doc = ""  # the generated one repeats the fields
            lines += doc_markdown(doc) if doc else []
            if is_dc:
                hints = typing.get_type_hints(obj)
                comments = field_comments(obj)
                lines += ["| field | type | default | description |", "| --- | --- | --- | --- |"]
                for f in dataclasses.fields(obj):
                    if f.default is not dataclasses.MISSING:
                        default = code(default_text(f.default))
                    elif f.default_factory is not dataclasses.MISSING:
                        default = code(default_text(f.default_factory()))
                    else:
                        default = "required"
                    lines.append(f"| {code(f.name)} | {code(type_name(hints.get(f.name, '')))} | {default} | "
                                 f"{md_cell(comments.get(f.name, ''))} |")
                lines.append("")
    return "\n".join(lines)


# -- placeholders for figures not copied yet -------------------------------------------------------
def placeholder_png(what: str) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(6, 1.2), dpi=100)
    fig.text(0.5, 0.5, f"{what}: not copied yet\nrun `make demo`, then `make docs-images`",
             ha="center", va="center", fontsize=11)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def pages() -> dict[str, str]:
    """{docs path: markdown} of every generated page."""
    return {CLI_PAGE: cli_reference(), SETTINGS_PAGE: settings_reference(), API_PAGE: api_reference()}


# -- MkDocs hook -----------------------------------------------------------------------------------
def on_files(files, config):
    from mkdocs.structure.files import File

    for uri, text in pages().items():
        if files.get_file_from_path(uri) is not None:
            raise RuntimeError(f"docs/{uri} is generated by scripts/docs_gen.py: remove the file from docs/")
        files.append(File.generated(config, uri, content=text))
    for uri, what in FIGURES.items():
        if files.get_file_from_path(uri) is None:
            log.info("docs/%s is missing (%s): a placeholder is used; run `make docs-images` "
                     "after `make demo`", uri, what)
            files.append(File.generated(config, uri, content=placeholder_png(what)))
    return files


def main() -> None:
    ap = argparse.ArgumentParser(description="Write the generated reference pages of the docs site.")
    ap.add_argument("--out", type=Path, required=True, help="folder to write reference/*.md into")
    args = ap.parse_args()
    for uri, text in pages().items():
        path = args.out / uri
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n")
        print(path)


if __name__ == "__main__":
    main()
