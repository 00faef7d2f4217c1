"""One variant timed on a target device: its edge deploy folder made here once, copied there only
if the device lacks that content, `pilotopt-edge bench --check` run there, and the result kept in
STORE/<target>/<variant>.json keyed by what was measured, so a rerun measures nothing again.

    tl = measure_on_target(parse_target("ssh://pi@car"), variant_folder, variant, store)
    tl.status, tl.brain_step.p50_ms, tl.device.text()"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Callable

import numpy as np
from pilotopt_edge.runtimes import EXTRAS

from pilotopt.artifacts import artifact_digest, variant_artifact
from pilotopt.atomic import write_json
from pilotopt.deploy import deploy_variant
from pilotopt.errors import BadInputError
from pilotopt.evaluate.latency import summarize
from pilotopt.records import Device, EdgeCheck, TargetLatency
from pilotopt.targets import Target
from pilotopt.variants import Variant

SCHEMA = "pilotopt.target_latency/1"
DEPLOY_DIR = "deploy"  # STORE/deploy/<variant>/: the edge folders, made once per artifact
ITERATIONS, WARMUP = 200, 10


def deploy_folder(variant_folder: Path, variant: Variant, store: Path) -> Path:
    """STORE/deploy/<variant>: the variant's edge deploy folder, made again only when its artifact
    changed (the digest is kept beside it)."""
    folder = store / DEPLOY_DIR / variant.name
    digest = artifact_digest(variant_artifact(variant_folder, variant).path)
    stamp = store / DEPLOY_DIR / f"{variant.name}.source"
    if folder.is_dir() and stamp.is_file() and stamp.read_text().strip() == digest:
        return folder
    deploy_variant(variant_folder, "edge", folder)
    stamp.write_text(digest + "\n")
    return folder


def content_address(folder: Path) -> str:
    """The deploy folder's content: the model files' sha256 from its manifest, and the reference
    frames and commands as arrays (the .npz's zip headers carry times, its arrays do not)."""
    manifest = json.loads((folder / "deploy.json").read_text())
    h = hashlib.sha256()
    for name, sha in sorted(manifest["sha256"].items()):
        if name != "reference.npz":
            h.update(f"{name}\0{sha}\0".encode())
    with np.load(folder / "reference.npz") as ref:
        for key in ("frames", "commands"):
            a = np.ascontiguousarray(ref[key])
            h.update(f"{key}{a.shape}{a.dtype}".encode())
            h.update(a.tobytes())
    manifest.pop("sha256")
    h.update(json.dumps(manifest, sort_keys=True).encode())
    return h.hexdigest()[:32]


def not_runnable(target: Target, variant: Variant) -> str | None:
    """Why the variant cannot run on the target (None when it can): the edge package has no loader
    for its runtime, or the device lacks that runtime."""
    if variant.runtime not in EXTRAS:
        return (f"the edge package runs {', '.join(sorted(EXTRAS))} models on a device; {variant.name} runs on "
                f"{variant.runtime}")
    version = target.describe().runtimes.get(variant.runtime)
    if version is None:
        return (f"runtime '{variant.runtime}' is not installed on the device: pip install "
                f"'pilotopt-edge[{EXTRAS[variant.runtime][1]}]' there")
    return None


def measure_on_target(target: Target, variant_folder: Path, variant: Variant, store: Path, *,
                      iterations: int = ITERATIONS, warmup: int = WARMUP, force: bool = False,
                      say: Callable[[str], None] | None = None) -> TargetLatency:
    """The variant's TargetLatency on `target`: "not runnable" with the reason, or its bench there
    (kept in STORE/<target>/<variant>.json; reused unless `force`). Raises TargetError when the
    device cannot be reached or used; nothing is kept from a bench that did not finish."""
    if iterations < 1 or warmup < 0:
        raise BadInputError(f"target bench: iterations must be >= 1 and warmup >= 0, got {iterations}, {warmup}")
    why = not_runnable(target, variant)
    if why is not None:
        return TargetLatency(target=target.name, status="not runnable", reason=f"not runnable on {target.name}: {why}")
    folder = deploy_folder(Path(variant_folder), variant, Path(store))
    address = content_address(folder)
    key = {"address": address, "target": target.spec, "threads": target.threads, "iterations": iterations,
           "warmup": warmup}
    kept = Path(store) / target.slug / f"{variant.name}.json"
    if not force and kept.is_file():
        try:
            doc = json.loads(kept.read_text())
            if doc.get("schema") == SCHEMA and doc.get("key") == key:
                return TargetLatency.from_json({**doc["result"], "sent": False}, f"{kept}")
        except (OSError, ValueError, BadInputError):
            pass  # unreadable: measured again
    sent = False
    if not target.has(address):
        if say:
            say(f"{variant.name}: copying its deploy folder to {target.name}")
        target.send(folder, address)
        sent = True
    if say:
        say(f"{variant.name}: bench on {target.name} ({iterations} brain steps, {target.threads} thread(s))")
    raw = target.bench(address, iterations, warmup)
    result = from_bench(target, raw, address, sent)
    write_json(kept, {"schema": SCHEMA, "key": key, "result": result.to_json()})
    return result


def from_bench(target: Target, raw: dict, address: str, sent: bool) -> TargetLatency:
    """pilotopt-edge's bench JSON as a TargetLatency, its statistics computed here as the host's are."""
    steps = [float(x) for x in raw["brain_step_samples_ms"]]
    calls = [float(x) for x in raw["model_call_samples_ms"]]
    check = raw.get("check")
    verdict = None if check is None else EdgeCheck.from_json(check, "the device's check")
    return TargetLatency(
        target=target.name, status="ok", device=Device.from_json(raw["device"], "the device's bench"),
        runtime=raw.get("runtime"), runtime_version=str(raw.get("runtime_version") or ""), threads=raw.get("threads"),
        brain_step=summarize(np.asarray(steps) / 1e3), model_call=summarize(np.asarray(calls) / 1e3),
        cold_start_ms=raw.get("cold_start_ms"), peak_rss_mb=raw.get("peak_rss_mb"), check=verdict,
        address=address, sent=sent, brain_step_samples_ms=steps)
