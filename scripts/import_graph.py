"""The package-level import graph of pilotopt, read with `ast` (nothing is imported).

Every `import` of a pilotopt module is collected, function-level ones included (they are marked),
and folded to packages: the first component below `pilotopt` (`pilotopt.runtimes`,
`pilotopt.artifacts`; a top-level module such as `pilotopt/preprocess.py` is its own node) and
the lean `pilotopt_edge` package as one node. Reported: the number of internal imports, the share
made inside functions, the package-level cycles (strongly connected components of more than one
node), the imports that run upward against LAYERS, and the function-level imports without a comment
saying why (an import stays inside a function only when its module is heavy, see HEAVY, or optional).

    python scripts/import_graph.py            # summary; exit 1 on a cycle or an upward import
    python scripts/import_graph.py --json     # the same as JSON
    python scripts/import_graph.py --list     # also every function-level import"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = {"pilotopt": ROOT / "src" / "pilotopt", "pilotopt_edge": ROOT / "edge" / "src" / "pilotopt_edge"}

# The layers, lowest first: a package may import its own layer and the layers below it, never one
# above. Packages on one line are peers (imports between them are allowed; a cycle between them is
# still reported). Read from what each package is for:
# - the edge package (frame -> (v, w) on the robot) imports nothing of pilotopt;
# - errors, atomic writes and the cache folder, YAML reading, the frameworks' import helpers and the
#   child-process runner hold no driving logic;
# - preprocess (camera frame -> model input, its compiled resize kernel) and the variant record;
# - contracts say how a model is fed (encode/decode); models are the architectures pilotopt trains;
# - artifacts say what a file is (one kind per format) and which contract feeds it; runtimes load
#   and run it, and are the one place a predictor is built (seen through its contract);
# - the simulator drives a predictor and records datasets; data reads them; train fits models;
#   techniques make variants; evaluate measures (records, low down, type what the stages hand
#   each other: they import nothing of pilotopt but its errors);
#   decide summarizes and picks (ranking, gates, Pareto, statistics);
# - report only renders what the layers below measured and decided; bench, deploy, pipeline and search
#   orchestrate; targets reach a device and time a variant's deploy folder there (evaluate calls a
#   Target it is given, never imports this package); the CLI and the package's `__init__` sit on top.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("pilotopt_edge",),
    ("errors", "atomic", "yamlfile", "frameworks", "isolation"),
    ("records",),
    ("preprocess", "resize_kernel", "variants"),
    ("contracts",),
    ("models",),
    ("artifacts",),
    ("runtimes",),
    ("sim", "gym_registration"),
    ("data",),
    ("train",),
    ("techniques",),
    ("evaluate", "breaking_point"),
    ("decide",),
    ("report",),
    ("bench", "deploy"),
    ("targets",),
    ("pipeline",),
    ("search",),
    ("cli", "__main__", "pilotopt"),
)


# Third-party packages that take a noticeable time to import (a framework, a compiler, scipy ~1 s):
# a pilotopt module that imports one of them at module level is heavy, and so is every module that
# imports it at module level. Only a heavy or optional import may sit inside a function.
HEAVY = frozenset({
    "torch", "torchvision", "torchao", "executorch", "tensorflow", "tf_keras", "keras", "tensorflow_model_optimization",
    "tf2onnx", "onnx", "onnxruntime", "onnxscript", "openvino", "nncf", "tensorrt", "ai_edge_litert", "numba",
    "scipy", "matplotlib", "cv2", "sklearn", "pandas", "gymnasium", "optuna", "ray", "mlflow", "imageio",
})


@dataclass(frozen=True)
class Import:
    source: str  # importing module, e.g. pilotopt.runtimes.litert
    target: str  # imported module, e.g. pilotopt.errors
    line: int
    function_level: bool  # made inside a function body (runs when the function is called)
    type_only: bool = False  # under `if TYPE_CHECKING:` (never runs)
    commented: bool = False  # a comment on the statement or just above its block of imports says why

    @property
    def where(self) -> str:
        return f"{module_path(self.source)}:{self.line}"


def module_path(module: str) -> str:
    """The repository-relative file of a module name."""
    top, *rest = module.split(".")
    base = SOURCES[top]
    folder = base.joinpath(*rest)
    path = folder / "__init__.py" if folder.is_dir() else folder.with_suffix(".py")
    return str(path.relative_to(ROOT))


def modules() -> dict[str, Path]:
    """Every module of both packages by its dotted name."""
    found = {}
    for top, base in SOURCES.items():
        for path in sorted(base.rglob("*.py")):
            parts = list(path.relative_to(base).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join([top, *parts])] = path
    return found


def package_of(module: str) -> str:
    """The node a module folds to: `pilotopt_edge`, `pilotopt` (its own __init__), or the first
    component below pilotopt."""
    parts = module.split(".")
    if parts[0] != "pilotopt":
        return parts[0]
    return parts[1] if len(parts) > 1 else "pilotopt"


def _commented(lines: list[str], node) -> bool:
    """A `#` comment on the import's own lines, or on one of the three lines of code just above its
    block of imports (the comment may sit above the `if` that holds the block)."""
    if any("#" in lines[i - 1] for i in range(node.lineno, (node.end_lineno or node.lineno) + 1)):
        return True
    i = node.lineno - 1
    while i >= 1 and (lines[i - 1].strip().startswith(("from ", "import ")) or not lines[i - 1].strip()):
        i -= 1
    above = [ln.strip() for ln in lines[max(0, i - 3):i] if ln.strip()]
    return any(ln.startswith("#") for ln in above)


class _Collector(ast.NodeVisitor):
    def __init__(self, module: str, is_package: bool, known: set[str], lines: list[str]):
        self.module, self.is_package, self.known, self.lines = module, is_package, known, lines
        self.depth = 0  # functions enclosing the current node
        self.type_only = 0
        self.found: list[Import] = []
        self.external: set[str] = set()  # third-party / stdlib top-level names imported at module level

    def visit_FunctionDef(self, node):
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_AsyncFunctionDef = visit_Lambda = visit_FunctionDef

    def visit_If(self, node):
        test = node.test
        guarded = (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
            isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")
        self.type_only += guarded
        for child in node.body:
            self.visit(child)
        self.type_only -= guarded
        for child in node.orelse:
            self.visit(child)

    def _add(self, target: str, node) -> None:
        # the longest known module the name starts with (`pilotopt.a.b.func` -> `pilotopt.a.b`)
        parts = target.split(".")
        while parts and ".".join(parts) not in self.known:
            parts.pop()
        if parts:
            self.found.append(Import(self.module, ".".join(parts), node.lineno, self.depth > 0, self.type_only > 0,
                                     _commented(self.lines, node)))

    def _external(self, name: str) -> None:
        if not self.depth and not self.type_only:
            self.external.add(name.split(".")[0])

    def visit_Import(self, node):
        for alias in node.names:
            if alias.name.split(".")[0] in SOURCES:
                self._add(alias.name, node)
            else:
                self._external(alias.name)

    def visit_ImportFrom(self, node):
        if node.level:  # relative: from the current package
            base = self.module.split(".")
            if not self.is_package:
                base = base[:-1]
            base = base[: len(base) - (node.level - 1)]
            name = ".".join(base + ([node.module] if node.module else []))
        else:
            name = node.module or ""
        if name.split(".")[0] not in SOURCES:
            self._external(name)
            return
        targets = []  # `from pilotopt import x` imports the submodule x when there is one
        for alias in node.names:
            sub = f"{name}.{alias.name}"
            targets.append(sub if sub in self.known else name)
        for target in dict.fromkeys(targets):  # one import per statement and module
            self._add(target, node)


def _collect() -> tuple[list[Import], dict[str, set[str]]]:
    known = modules()
    found: list[Import] = []
    external: dict[str, set[str]] = {}
    for module, path in known.items():
        text = path.read_text()
        collector = _Collector(module, path.name == "__init__.py", set(known), text.splitlines())
        collector.visit(ast.parse(text, filename=str(path)))
        found.extend(collector.found)
        external[module] = collector.external
    return found, external


def collect() -> list[Import]:
    """Every internal import of both packages, in file order."""
    return _collect()[0]


def heavy_modules(imports: list[Import], external: dict[str, set[str]]) -> dict[str, str]:
    """{module: the heavy package importing it loads} for every heavy module: one that imports a
    HEAVY package at module level, or (at module level) a heavy module; a module's packages
    (`pilotopt.a` for `pilotopt.a.b`) count as imported."""
    deps: dict[str, set[str]] = {m: set() for m in external}
    for imp in imports:
        if not imp.function_level and not imp.type_only:
            deps[imp.source].add(imp.target)
    for m in external:
        parts = m.split(".")
        deps[m].update(".".join(parts[:i]) for i in range(1, len(parts)) if ".".join(parts[:i]) in deps)
        deps[m].discard(m)
    heavy = {m: sorted(ext & HEAVY)[0] for m, ext in external.items() if ext & HEAVY}
    changed = True
    while changed:
        changed = False
        for m, ds in deps.items():
            if m not in heavy:
                why = next((heavy[d] for d in sorted(ds) if d in heavy), None)
                if why:
                    heavy[m], changed = why, True
    return heavy


def layer_of() -> dict[str, int]:
    return {pkg: i for i, layer in enumerate(LAYERS) for pkg in layer}


def package_edges(imports: list[Import]) -> dict[tuple[str, str], list[Import]]:
    """(importing package, imported package) -> the imports behind that edge. Left out: type-only
    imports, and imports of the root package itself (`from pilotopt import __version__`): its
    `__init__` has run before any pilotopt module, so importing it adds nothing to what loads."""
    edges: dict[tuple[str, str], list[Import]] = {}
    for imp in imports:
        a, b = package_of(imp.source), package_of(imp.target)
        if a != b and b != "pilotopt" and not imp.type_only:
            edges.setdefault((a, b), []).append(imp)
    return edges


def cycles(edges) -> list[list[str]]:
    """Strongly connected components of more than one package (Tarjan), each sorted."""
    graph: dict[str, set[str]] = {}
    for a, b in edges:
        graph.setdefault(a, set()).add(b)
        graph.setdefault(b, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def analyse() -> dict:
    """The whole report as plain data (what --json prints)."""
    imports, external = _collect()
    heavy = heavy_modules(imports, external)
    edges = package_edges(imports)
    rank = layer_of()
    unlayered = sorted({p for edge in edges for p in edge if p not in rank})
    upward = [imp for (a, b), imps in sorted(edges.items()) if a in rank and b in rank and rank[b] > rank[a]
              for imp in imps]
    functional = [imp for imp in imports if imp.function_level]
    # a function-level import of a light module needs its reason written beside it (an optional
    # package, a module loaded on demand); one of a heavy module is self-explaining with a comment too
    unexplained = [imp for imp in functional if not imp.commented]
    return {
        "modules": len(modules()),
        "internal_imports": len(imports),
        "function_level": len(functional),
        "function_level_share": round(len(functional) / len(imports), 3) if imports else 0.0,
        "packages": sorted({p for edge in edges for p in edge}),
        "package_edges": len(edges),
        "cycles": cycles(edges),
        "upward": [{**asdict(imp), "where": imp.where, "edge": f"{package_of(imp.source)} -> {package_of(imp.target)}"}
                   for imp in upward],
        "unlayered": unlayered,
        "unexplained_function_level": [{**asdict(imp), "where": imp.where, "heavy": heavy.get(imp.target)}
                                       for imp in unexplained],
        "function_level_imports": [{**asdict(imp), "where": imp.where, "heavy": heavy.get(imp.target)}
                                   for imp in functional],
        "heavy_modules": heavy,
        "imports": [asdict(imp) for imp in imports],
    }


def summary(result: dict, listing: bool = False) -> str:
    lines = [f"{result['modules']} modules, {result['internal_imports']} internal imports, "
             f"{result['function_level']} at function level ({result['function_level_share']:.0%}); "
             f"{len(result['packages'])} packages, {result['package_edges']} package edges",
             f"cycles: {len(result['cycles'])}"]
    lines += [f"  {' <-> '.join(c)}" for c in result["cycles"]]
    lines.append(f"upward imports: {len(result['upward'])}")
    lines += [f"  {u['where']}: {u['source']} -> {u['target']}{' (function level)' if u['function_level'] else ''}"
              f"  [{u['edge']}]" for u in result["upward"]]
    if result["unlayered"]:
        lines.append(f"packages missing from LAYERS: {', '.join(result['unlayered'])}")
    lines.append(f"function-level imports without a comment saying why: {len(result['unexplained_function_level'])}")
    if listing:
        lines.append("function-level imports (heavy: the package that makes the module heavy; *: no comment):")
        lines += [f"  {f['where']}: {f['target']}{' [' + f['heavy'] + ']' if f['heavy'] else ''}"
                  f"{'' if f['commented'] else ' *'}" for f in result["function_level_imports"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the analysis as JSON")
    parser.add_argument("--list", action="store_true", help="also list every function-level import")
    args = parser.parse_args(argv)
    result = analyse()
    if args.json:
        print(json.dumps({k: v for k, v in result.items() if k != "imports" or args.list}, indent=1))
    else:
        print(summary(result, args.list))
    return 1 if result["cycles"] or result["upward"] or result["unlayered"] else 0


if __name__ == "__main__":
    sys.exit(main())
