"""The front door cannot rot (issue 33): the README and the documentation site in docs/ are checked
against the code.

- the site builds with `mkdocs build --strict` (a broken link or anchor, a page missing from the nav,
  fails), its generated pages included, and the README's links resolve;
- every option (`--foo`) named anywhere in README.md or docs/ exists in the CLI, every `pilotopt ...`
  command in a fenced shell block parses against its command (options, values, required ones), and
  every inline `pilotopt ...` names only its own command's options;
- the generated CLI reference lists every command and option of the Typer app's command tree;
- every documented YAML block (run config, search config, optimize config, input contract) and every
  `--set technique.key=value` is valid, and every Python block's imports resolve;
- the README's quick-start commands run: the cheap ones for real on tiny data (and its Behavior
  Metrics `sim drive` on a DLS PilotNet state dict with random weights), the expensive ones
  (`make demo`, `pilotopt run`, `optimize` on your own model) are parsed against their command.

A fenced block is classified by an HTML comment on the line before it, invisible when rendered:
`<!-- docs-test: run -->` (run for real), `parse`, `make` (make targets, dry-run), `run-config`,
`search-config`, `optimize-config`, `contract`."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import itertools
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README = ROOT / "README.md"
OPTION = re.compile(r"(?<![\w-])--[A-Za-z][\w-]*")
# options the docs name that belong to other tools, each with where it is from
FOREIGN_OPTIONS = {
    "--data_dir": "DeepLearningStudio's training scripts (docs/data-and-training.md)",
    "--durations": "pytest (docs/development.md)",
    "--strict": "mkdocs build (docs/development.md)",
    "--resources": "ray start (docs/deploy.md)",
    "--check": "pilotopt-edge bench (docs/deploy.md)",
}
MARKER = re.compile(r"<!--\s*docs-test:\s*([\w-]+)\s*-->")
SHELL = {"bash", "sh", "shell", "console", ""}
YAML_MARKERS = {"run-config", "search-config", "optimize-config", "contract", "bm-config"}


def doc_files() -> list[Path]:
    return [README, *sorted(DOCS.rglob("*.md"))]


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def fenced_blocks(text: str) -> list[tuple[str | None, str, str]]:
    """[(marker, language, body)] of every fenced code block; marker: the `docs-test` comment on the
    line before the fence, if any."""
    blocks, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        m = re.match(r"^\s*(```+|~~~+)\s*([\w+-]*)", lines[i])
        if not m:
            i += 1
            continue
        fence, lang = m.group(1), m.group(2).lower()
        prev = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        mark = MARKER.search(prev)
        body, i = [], i + 1
        while i < len(lines) and not lines[i].strip().startswith(fence):
            body.append(lines[i])
            i += 1
        blocks.append((mark.group(1) if mark else None, lang, "\n".join(body)))
        i += 1
    return blocks


def shell_commands(body: str) -> list[list[str]]:
    """Each command line of a shell block as tokens (continuations joined, comments dropped)."""
    out, line = [], ""
    for raw in body.splitlines():
        line += raw.rstrip()
        if line.endswith("\\"):
            line = line[:-1] + " "
            continue
        tokens = shlex.split(line, comments=True)
        if tokens:
            out.append(tokens)
        line = ""
    return out


def pilotopt_args(tokens: list[str]) -> list[str] | None:
    """The arguments after `pilotopt` (or `.venv/bin/pilotopt`), or None if the line runs something else."""
    for i, tok in enumerate(tokens):
        if tok == "pilotopt" or tok.endswith("/pilotopt"):
            return tokens[i + 1:]
    return None


# -- the command tree, walked here independently of scripts/docs_gen.py ----------------------------
@pytest.fixture(scope="module")
def root():
    import typer.main

    import pilotopt.cli as cli

    if not cli.app.registered_commands and not cli.app.registered_groups:
        cli._register_commands()
    return typer.main.get_command(cli.app)


def walk(cmd, path=("pilotopt",)):
    yield path, cmd
    for name, sub in sorted((getattr(cmd, "commands", None) or {}).items()):
        yield from walk(sub, (*path, name))


def option_names(cmd) -> set[str]:
    names = {"--help"}
    for p in cmd.params:
        if p.param_type_name == "option":
            names.update(o for o in (*p.opts, *p.secondary_opts) if o.startswith("--"))
    return names


def resolve(root, args: list[str]):
    """(command path, command, parent contexts' names, remaining args): sub-command names walked."""
    cmd, path, rest = root, ["pilotopt"], list(args)
    while rest and getattr(cmd, "commands", None) and not rest[0].startswith("-"):
        name = rest.pop(0)
        if name not in cmd.commands:
            raise AssertionError(f"`{' '.join(path)}` has no sub-command {name!r}; it has {', '.join(cmd.commands)}")
        cmd = cmd.commands[name]
        path.append(name)
    return path, cmd, rest


def parse(root, args: list[str]) -> None:
    """Parse `pilotopt ARGS` as the CLI would, without running it: unknown options, missing values,
    wrong types, missing required options and extra arguments fail."""
    path, cmd, rest = resolve(root, args)
    if "--help" in rest:
        return
    if getattr(cmd, "commands", None):
        assert not rest, f"`{' '.join(path)}` is a group; {rest} names no sub-command"
        return
    try:
        cmd.make_context(" ".join(path), rest)
    except Exception as exc:  # noqa: BLE001 - click's usage errors: say which command and why
        raise AssertionError(f"`pilotopt {' '.join(args)}` does not parse: {exc}") from None


# -- the strict build ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def site(tmp_path_factory):
    if importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("material") is None:
        pytest.fail("mkdocs / mkdocs-material are not installed: `make setup` installs the `docs` extra")
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return out


def test_site_builds_strictly_with_every_page(site):
    for page in ("index.html", "getting-started/index.html", "reference/cli/index.html",
                 "reference/technique-settings/index.html", "reference/python-api/index.html",
                 "performance/index.html", "quick_profile/index.html", "full_profile/index.html"):
        assert (site / page).is_file(), page
    cli_page = (site / "reference/cli/index.html").read_text()
    assert "pilotopt sim drive" in cli_page and "--latency-samples" in cli_page


def test_readme_links_resolve(site):
    text = README.read_text()
    links = re.findall(r"\]\(([^)\s]+)\)", text)
    assert links
    for link in links:
        if re.match(r"^[a-z]+://", link):
            continue
        target, _, anchor = link.partition("#")
        path = (ROOT / target).resolve()
        if target.startswith("docs/img/"):
            continue  # copied by scripts/docs_images.py after a demo run; see test_readme_images
        assert path.exists(), f"README links {link}, which does not exist"
        if anchor and path.suffix == ".md":  # the anchor must exist on the built page
            page = path.relative_to(DOCS).with_suffix("")
            html = site / ("" if page.name == "index" else page) / "index.html"
            assert f'id="{anchor}"' in html.read_text(), f"README links {link}: no such anchor"


def test_readme_images():
    """The README shows the report's decision figure and robustness heatmap from docs/img/, copied
    there from a finished run by scripts/docs_images.py (`make docs-images` after `make demo`)."""
    text = README.read_text()
    images = ["docs/img/decision.png", "docs/img/robustness.png"]
    for img in images:
        assert f"]({img})" in text, f"README does not show {img}"
    if not (DOCS / "img").is_dir():
        pytest.skip("docs/img/ not created yet: run `make demo`, then `make docs-images`")
    for img in images:
        data = (ROOT / img).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{img} is not a PNG"


def test_readme_is_a_front_door():
    lines = README.read_text().splitlines()
    assert len(lines) <= 160, f"README.md has {len(lines)} lines; the reference belongs in docs/"
    text = "\n".join(lines)
    for needle in ("make demo", "make test", "--arch dls_pilotnet", "Behavior Metrics", "docs/",
                   "docs/performance.md"):
        assert needle in text
    for extra in ("ml", "dev", "ray", "search", "mlflow", "docs"):  # what each pinned group is for
        assert re.search(rf"^\| `{extra}` \| \S", text, re.M), f"README does not say what extra {extra} is for"


# -- options and commands --------------------------------------------------------------------------
def test_every_option_named_in_the_docs_exists(root):
    known = set().union(*(option_names(cmd) for _, cmd in walk(root)))
    bad = []
    for path in doc_files():
        for m in OPTION.finditer(path.read_text()):
            if m.group(0) not in known and m.group(0) not in FOREIGN_OPTIONS:
                line = path.read_text()[:m.start()].count("\n") + 1
                bad.append(f"{rel(path)}:{line}: {m.group(0)}")
    assert not bad, "options the CLI does not have:\n" + "\n".join(bad)


def test_every_documented_command_parses(root):
    """Every `pilotopt ...` line of a shell block parses; every inline `pilotopt ...` span names only
    options of its own command."""
    checked, bad = 0, []
    for path in doc_files():
        text = path.read_text()
        for _, lang, body in fenced_blocks(text):
            if lang not in SHELL:
                continue
            for tokens in shell_commands(body):
                args = pilotopt_args(tokens)
                if args is None:
                    continue
                try:
                    parse(root, args)
                    checked += 1
                except AssertionError as exc:
                    bad.append(f"{rel(path)}: {exc}")
        prose = re.sub(r"```.*?```", "", text, flags=re.S)
        for span in re.findall(r"`(pilotopt [^`]+)`", prose):
            words = list(itertools.takewhile(lambda w: re.fullmatch(r"[a-z][a-z-]*", w), span.split()[1:]))
            try:
                cmd_path, cmd, _ = resolve(root, words)
            except AssertionError as exc:
                bad.append(f"{rel(path)}: `{span}`: {exc}")
                continue
            for opt in OPTION.findall(span):
                if opt not in option_names(cmd):
                    bad.append(f"{rel(path)}: `{span}`: `{' '.join(cmd_path)}` has no option {opt}")
            checked += 1
    assert not bad, "\n".join(bad)
    assert checked > 50, checked


def test_generated_cli_reference_lists_every_command_and_option(root):
    spec = importlib.util.spec_from_file_location("docs_gen", ROOT / "scripts" / "docs_gen.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    page = gen.cli_reference()
    sections = {}
    for m in re.finditer(r"^#{2,3} (pilotopt[^\n]*)\n(.*?)(?=^#{2,3} pilotopt|\Z)", page, re.M | re.S):
        sections[m.group(1).strip()] = m.group(2)
    commands = list(walk(root))
    assert len(commands) > 20
    for path, cmd in commands:
        name = " ".join(path)
        assert name in sections, f"the CLI reference has no section for `{name}`"
        listed = set()  # the options in the first cell of the section's table rows
        for row in re.findall(r"^\| `([^`]*)` \|", sections[name], re.M):
            listed.update(OPTION.findall(row))
        for opt in option_names(cmd):
            assert opt in listed, f"`{name}` {opt} missing from the reference"
        first = (cmd.help or "").strip().split("\n")[0]
        if first:
            assert first.split()[0] in sections[name]


# -- YAML blocks, --set, Python blocks -------------------------------------------------------------
def _yaml_blocks():
    for path in doc_files():
        for mark, lang, body in fenced_blocks(path.read_text()):
            if lang in ("yaml", "yml"):
                yield path, mark, body


def test_every_yaml_block_is_checked_and_valid(tmp_path):
    from pilotopt.contracts import load_contract
    from pilotopt.pipeline.config import load_config
    from pilotopt.search.config import load_search_config
    from pilotopt.techniques import techniques
    from pilotopt.techniques._chain import plan_chains, step_overrides
    from pilotopt.techniques._runner import merge_settings, read_config_file

    seen = set()
    for n, (path, mark, body) in enumerate(_yaml_blocks()):
        assert mark in YAML_MARKERS, f"{rel(path)}: a YAML block without a <!-- docs-test: KIND --> marker " \
                                     f"({', '.join(sorted(YAML_MARKERS))}), so nothing checks it:\n{body[:200]}"
        seen.add(mark)
        file = tmp_path / f"block{n}.yaml"
        file.write_text(body + "\n")
        where = f"{rel(path)} ({mark})"
        try:
            if mark == "run-config":
                load_config(file)
            elif mark == "search-config":
                load_search_config(file)
            elif mark == "contract":
                load_contract(file)
            elif mark == "bm-config":  # exactly what `pilotopt deploy --target behavior-metrics` writes
                _check_bm_config(file)
            else:
                known = techniques()
                settings, variants = read_config_file(file)
                layers = merge_settings(settings, None)
                for name, values in layers.items():
                    known[name].make_settings(values)
                for chain in plan_chains([], known, variants):
                    for i, step in enumerate(chain.steps):
                        step.technique.make_settings(step_overrides(chain, i, layers))
        except Exception as exc:  # noqa: BLE001
            raise AssertionError(f"{where} is not valid: {exc}") from None
    assert seen == YAML_MARKERS, f"expected a checked example of each kind, found {sorted(seen)}"


def _check_bm_config(file: Path) -> None:
    import yaml

    from pilotopt.deploy.bm_brains import BRAINS, config_yaml
    from pilotopt.deploy.target_behavior_metrics import TIME_CYCLE_MS, WORLD

    doc = yaml.safe_load(file.read_text())
    robot = doc["Behaviors"]["Robot"]
    brain = next(b for b in BRAINS.values() if b.brain_path == robot["BrainPath"])
    assert doc == config_yaml(brain, robot["Parameters"]["Model"], TIME_CYCLE_MS, WORLD), "differs from deploy's"


def test_documented_settings_exist():
    from pilotopt.techniques import get_technique

    found = 0
    for path in doc_files():
        for tech, key, value in re.findall(r"--set\s+(\w+)\.(\w+)=([^\s`]+)", path.read_text()):
            if tech == "technique":  # the syntax itself, `--set technique.key=value`
                continue
            try:
                get_technique(tech).make_settings({key: value})
            except Exception as exc:  # noqa: BLE001
                raise AssertionError(f"{rel(path)}: --set {tech}.{key}={value}: {exc}") from None
            found += 1
    assert found


def test_python_blocks_import_what_exists():
    found = 0
    for path in doc_files():
        for _, lang, body in fenced_blocks(path.read_text()):
            if lang != "python":
                continue
            tree = ast.parse(body, filename=rel(path))
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom):
                    module = importlib.import_module(node.module)
                    for alias in node.names:
                        assert hasattr(module, alias.name), f"{rel(path)}: {node.module} has no {alias.name}"
                        found += 1
                elif isinstance(node, ast.Import):
                    for alias in node.names:
                        importlib.import_module(alias.name)
    assert found > 10


# -- the README's quick start ----------------------------------------------------------------------
def readme_blocks(kind: str) -> list[list[str]]:
    cmds = [c for mark, _, body in fenced_blocks(README.read_text()) if mark == kind for c in shell_commands(body)]
    assert cmds, f"README has no <!-- docs-test: {kind} --> block"
    return cmds


def test_readme_make_targets_exist_and_their_commands_parse(root):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAKE", "MFLAGS"))}
    for tokens in readme_blocks("make"):
        assert tokens[0] == "make" and len(tokens) == 2, tokens
        proc = subprocess.run(["make", "-n", tokens[1]], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=60)
        assert proc.returncode == 0, f"make -n {tokens[1]}: {proc.stderr}"
        for line in proc.stdout.splitlines():
            args = pilotopt_args(shlex.split(line)) if "bin/pilotopt " in line else None
            if args is not None:
                parse(root, args)  # `make demo` is `pilotopt run --out out/demo`


def test_readme_own_model_commands_parse(root):
    cmds = [pilotopt_args(t) for t in readme_blocks("parse")]
    assert all(a is not None for a in cmds)
    for args in cmds:
        parse(root, args)
    used = {tuple(a[:1]) for a in cmds}
    assert {("optimize",), ("run",), ("sim",)} <= used


@pytest.mark.slow
def test_readme_quick_start_runs(root, tmp_path):
    """The README's first-look commands, run for real as a newcomer would, in an empty folder."""
    cmds = readme_blocks("run")
    for tokens in cmds:
        args = pilotopt_args(tokens)
        assert args is not None, tokens
        parse(root, args)
        proc = subprocess.run([sys.executable, "-m", "pilotopt", *args], cwd=tmp_path, capture_output=True,
                              text=True, timeout=240, env={**os.environ, "COLUMNS": "200"})
        assert proc.returncode == 0, f"`pilotopt {' '.join(args)}` failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
        for flag in ("--plot", "--json", "--out"):
            if flag in args:
                assert (tmp_path / args[args.index(flag) + 1]).exists(), f"{flag} wrote nothing: {args}"


@pytest.mark.slow
def test_readme_behavior_metrics_drive_runs(root, tmp_path):
    """The README's `sim drive` of a Behavior Metrics model, run for real on a DLS PilotNet state dict
    saved as DLS and Behavior Metrics save it (random weights: it leaves the road, and says so)."""
    import torch

    from pilotopt.models.arch import resolve_arch

    drives = [a for a in map(pilotopt_args, readme_blocks("parse")) if a[:2] == ["sim", "drive"]]
    assert drives, "README's own-model blocks drive no model"
    for args in drives:
        model = args[args.index("--model") + 1]
        arch = args[args.index("--arch") + 1]
        torch.save(resolve_arch(arch).build(0).state_dict(), tmp_path / model)
        proc = subprocess.run([sys.executable, "-m", "pilotopt", *args, "--json", "drive.json"], cwd=tmp_path,
                              capture_output=True, text=True, timeout=240, env={**os.environ, "COLUMNS": "200"})
        assert proc.returncode == 0, f"`pilotopt {' '.join(args)}` failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
        assert (tmp_path / "drive.json").is_file()
