"""Where a measured value is read by a string key outside pilotopt.records.

A measured value is a field of a record in `pilotopt/records.py` that holds a measurement or a
figure derived from one (latency, size, error, drive metrics, closed-loop aggregates). Reading one
as `row["mse_mean"]` or `row.get("latency_ms")` bypasses the record's types: a renamed field then
fails in some later stage, not at once. Writing one (`metrics["x"] = ...`, a dict literal) is not a
read and is not counted; the records check what writers write when they are validated.

    python scripts/measured_reads.py           # per-file counts; exit 1 when any module reads one
    python scripts/measured_reads.py --list    # every read, file:line"""

from __future__ import annotations

import argparse
import ast
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src" / "pilotopt"
# names too generic to be told apart from other dicts' keys (n, condition, ...) are not counted
GENERIC = frozenset({"n", "condition", "circuit", "direction", "repetition", "baseline", "batch", "calls", "bytes",
                     "error", "status", "name", "key", "model", "params", "size", "summary", "mse", "target"})


def measured_fields() -> set[str]:
    sys.path.insert(0, str(ROOT / "src"))
    from pilotopt import records as R

    names: set[str] = set()
    for cls in (R.LatencyStats, R.Latency, R.Size, R.Error, R.Throughput, R.Memory, R.CrossCheck, R.DriveMetrics,
                R.ConditionScore, R.BridgeMetrics):
        names |= set(cls.model_fields)
    # the benchmarks', the sensitivity table's and the breaking search's figures, not their identity fields
    identity = set(R.OfflineRow.model_fields) | {"note", "describe", "layer", "state", "scale", "source", "drives"}
    for cls in (R.TechniqueBenchRow, R.RuntimeBenchRow, R.LayerSensitivity, R.BreakingProbe, R.Produced):
        names |= set(cls.model_fields) - identity
    names |= set(R.VariantSummary.model_fields) - set(R.OfflineRow.model_fields)
    names |= {"latency_ms", "size", "throughput", "memory_mb", "cross_check", "metrics", "summary"}
    return names - GENERIC - {"in_offline", "framework_label", "status_text", "cl_text", "key"}


def reads(path: Path, fields: set[str]) -> list[tuple[int, str]]:
    """(line, key) of every read of a measured field by a constant string key in `path`."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load):
            key = node.slice
            if isinstance(key, ast.Constant) and key.value in fields:
                out.append((node.lineno, key.value))
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get"
              and node.args and isinstance(node.args[0], ast.Constant) and node.args[0].value in fields):
            out.append((node.lineno, node.args[0].value))
    return sorted(out)


def scan() -> dict[str, list[tuple[int, str]]]:
    fields = measured_fields()
    found = {}
    for path in sorted(SRC.rglob("*.py")):
        if path.name == "records.py" and path.parent == SRC:
            continue
        got = reads(path, fields)
        if got:
            found[path.relative_to(SRC).as_posix()] = got
    return found


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--list", action="store_true", help="every read, file:line key")
    args = ap.parse_args()
    found = scan()
    counts = Counter({f: len(v) for f, v in found.items()})
    for f, n in counts.most_common():
        print(f"{n:4d} {f}")
        if args.list:
            for line, key in found[f]:
                print(f"       {f}:{line} {key}")
    print(f"{sum(counts.values())} reads of a measured value by a string key in {len(counts)} modules")
    return 1 if counts else 0


if __name__ == "__main__":
    raise SystemExit(main())
