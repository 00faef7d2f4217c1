"""`optimize()`: run techniques on a baseline in child processes, one variant folder each.

The chains run one after another in ONE child, so TensorFlow and PyTorch are imported once, not
once per variant (3-13 s each). A converter that crashes the interpreter (SIGSEGV, abort) takes
only that child with it: the chain it was in runs again alone in a fresh child, whose verdict is
recorded (a one-line reason when it crashes again), and the chains after it go on in another."""

from __future__ import annotations

import importlib
import json
import os
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from pilotopt.artifacts import artifact_bytes, artifact_digest, detect_kind, get_kind, open_artifact, variant_artifact
from pilotopt.atomic import atomic_path, ensure_writable_dir, temp_name, write_json
from pilotopt.data import DataConfig, load_splits
from pilotopt.errors import BadInputError, RuntimeUnavailable, one_line
from pilotopt.frameworks import quiet_conversion
from pilotopt.isolation import DEBUG_ENV, failure_reason, run_job, set_env_defaults
from pilotopt.preprocess import Geometry
from pilotopt.records import Produced
from pilotopt.runtimes import load_artifact_predictor
from pilotopt.techniques._chain import chain_key, is_spec, plan_chains, root_key, step_overrides
from pilotopt.techniques._core import BASELINE_VARIANT, Technique, TechniqueContext, _TECHNIQUES, techniques
from pilotopt.techniques._fidelity import MAX_MSE_RATIO, function_lost
from pilotopt.techniques._settings import settings_dict
from pilotopt.variants import VARIANT_FILE, Variant, read_variant, write_variant
from pilotopt.yamlfile import read_yaml

CHECK_FRAMES = 8  # frames each result's outputs are compared with its input model's on (max |diff|)
SCORE_FRAMES = 256  # training frames each result's MSE is compared with its input model's on


# -- inputs ----------------------------------------------------------------------------------------
_IN_PROCESS = threading.Lock()
_PREPARED: list = []  # data configs whose training split this process has prepared (said once)


def _select(names: Sequence[str] | str, known: dict[str, Technique]) -> list[str]:
    if isinstance(names, str):
        names = list(known) if names.strip() == "all" else [n.strip() for n in names.split(",") if n.strip()]
    names = list(dict.fromkeys(names))
    if "all" in names:
        names = list(known)
    if not names:
        raise BadInputError(f"no technique given; choose from {', '.join(known)} (or all)")

    unknown = [n for n in names if n not in known and not is_spec(n)]
    if unknown:
        raise BadInputError(f"unknown technique(s) {', '.join(unknown)}; choose from {', '.join(known)} "
                            "(or chain them: a>b)")
    return names


def merge_settings(*layers: dict | None) -> dict[str, dict]:
    merged: dict[str, dict] = {}
    for layer in layers:
        for name, values in (layer or {}).items():
            if values is not None and not isinstance(values, dict):
                raise BadInputError(f"settings for technique '{name}' must be a mapping of key -> value")
            merged.setdefault(name, {}).update(values or {})
    return merged


def check_input(art, threads) -> None:
    """Load the input model and run it once through its contract, before any work: a model that
    cannot be loaded, or does not take what its contract feeds, stops with one line."""
    import numpy as np

    t = int(art.metadata.get("sequence_length") or 1)
    g = art.contract.geometry
    images = np.zeros((1, t, *g.image_shape) if t > 1 else (1, *g.image_shape), np.uint8)
    with quiet_conversion():
        y = load_artifact_predictor(art, threads=threads).predict(images)
    if np.asarray(y).shape != (1, 2):
        raise BadInputError(f"model '{art.path}' returns shape {tuple(np.asarray(y).shape)} for one frame; "
                            "pilotopt needs 2 outputs (v, w)")


# -- the parent ------------------------------------------------------------------------------------
def optimize(model_path: Path | str, techniques_: Sequence[str] | str, data_roots: Sequence[Path | str] | None,
             out_dir: Path | str, settings: dict[str, dict] | None = None, config_file: Path | str | None = None,
             seed: int = 0, threads: int | None = 2, cache_dir: Path | str | None = None,
             progress: Callable[[str], None] | None = None, test_circuits: Sequence[str] | str | None = None,
             force: bool = False, timeout: float | None = None, arch: str | None = None,
             arch_args: dict | None = None, contract=None, variants: dict | None = None,
             reuse_from: Sequence[Path | str] = (), max_mse_ratio: float = MAX_MSE_RATIO) -> list[Variant]:
    """Apply each technique or chain to the baseline at `model_path`; one variant folder each under
    `out_dir` (named after the technique, the chain's steps joined by '+', or the YAML variant's
    name), written atomically. `techniques_`: names, `a>b>c` chains, or "all"; `variants`: named
    chains {name: {steps: [...], settings: {step: {...}}}} (also read from `config_file`'s
    `variants:`). Returns one Variant per chain (ok / failed / skipped), in the order given. Raises
    BadInputError only for bad arguments (unknown names, steps whose kinds do not fit), before any
    work. Every chain prefix is cached by (input digest, steps, settings, seed): a prefix shared by
    several chains runs once, and a variant already done is kept unless `force`. `timeout`: seconds
    one step may take before it is killed and recorded as failed (None: no limit). `arch` /
    `arch_args`: the architecture of a state dict; `contract`: the input contract (a preset name,
    YAML file or mapping; default pilotopt's own, adapted to the input the model declares).
    `reuse_from`: other artifacts folders whose finished steps count as cached (a search reuses the
    run's fine-tunes). `max_mse_ratio`: a step fails when its result's MSE on training frames exceeds
    this multiple of its input model's, or when an output stopped varying (see `_check`)."""
    if not isinstance(max_mse_ratio, (int, float)) or isinstance(max_mse_ratio, bool) or max_mse_ratio < 1:
        raise BadInputError(f"max_mse_ratio must be a number >= 1 (a multiple of the input model's MSE), "
                            f"got {max_mse_ratio!r}")
    known = techniques()
    file_settings, file_variants = read_config_file(config_file) if config_file else ({}, {})
    items = _select(techniques_, known) if techniques_ or not (variants or file_variants) else []
    chains = plan_chains(items, known, {**file_variants, **(variants or {})})
    layers = merge_settings(file_settings, settings)
    unknown = [n for n in layers if n not in known]
    if unknown:
        raise BadInputError(f"settings given for unknown technique(s) {', '.join(unknown)}; "
                            f"choose from {', '.join(known)}")
    for name, values in layers.items():  # validates every key first, also of techniques no chain runs
        known[name].make_settings(values)
    chosen = {c.name: [s.technique.make_settings(step_overrides(c, i, layers)) for i, s in enumerate(c.steps)]
              for c in chains}
    with _IN_PROCESS:  # the baseline is loaded here, in this process, which may run two optimize calls
        baseline = open_artifact(model_path, arch=arch, arch_args=arch_args, contract=contract)
        check_input(baseline, threads)
    if progress:
        for note in baseline.contract.notes:
            progress(f"input contract: {note}")
    data_cfg = None
    if any(c.needs_data and c.takes(baseline.kind.name) for c in chains):
        need = [c.name for c in chains if c.needs_data]
        data_cfg = _data_config(data_roots, test_circuits, cache_dir, seed, need, baseline.contract.geometry)
    out = ensure_writable_dir(out_dir)
    digest = artifact_digest(baseline.path)
    if data_cfg is not None:  # build the preprocessed-data cache once, here, not in racing children
        if data_cfg not in _PREPARED:
            if progress:
                progress("preparing the training split")
            _PREPARED.append(data_cfg)
        if len(load_splits(data_cfg).train) == 0:
            raise BadInputError("the training split is empty; check --data and the test circuits")
    results: list[Variant | None] = [None] * len(chains)
    group: list[tuple[int, _Plan]] = []  # chains planned, waiting to run together in one child

    def report(i: int, variant: Variant) -> None:
        results[i] = variant
        if progress:
            chain, done = chains[i], Produced.of(variant.record)
            took = done.chain_duration_s if done.chain_duration_s is not None else done.duration_s  # every step
            extra = f" ({took:.1f} s)" if took is not None and variant.status == "ok" else ""
            note = variant.reason if variant.status != "ok" else ("already done" if done.reused else "")
            progress(f"[{i + 1}/{len(chains)}] {chain.name}: {variant.status}{extra}{': ' + note if note else ''}")

    def flush() -> None:
        for i, variant in _run_plans([p for _, p in group], seed, threads, data_cfg, timeout, float(max_mse_ratio),
                                     [i for i, _ in group]):
            report(i, variant)
        group.clear()

    def plan(i: int, chain, say: bool) -> Variant | _Plan:
        return _plan_chain(chain, chosen[chain.name], baseline, digest, out, seed, threads, force,
                           progress=progress if say else None, roots=[Path(r) for r in reuse_from])

    for i, chain in enumerate(chains):
        if progress:
            progress(f"[{i + 1}/{len(chains)}] {chain.name}: {chain.description}")
        planned = plan(i, chain, True)
        if isinstance(planned, _Plan) and any(planned.keys & p.keys for _, p in group):
            flush()  # it shares a step with a chain not run yet: run those first, then take that step as done
            planned = plan(i, chain, False)
        if isinstance(planned, _Plan):
            group.append((i, planned))
        else:
            report(i, planned)
    flush()
    return results  # type: ignore[return-value]


def read_config_file(path: Path | str) -> tuple[dict[str, dict], dict]:
    """A YAML file of per-technique settings, optionally with `settings:` and `variants:` sections:
    ({technique: {key: value}}, {variant name: chain spec})."""
    path = Path(path)
    doc = read_yaml(path, "config file")
    if doc is None:
        return {}, {}
    variants = {}
    if isinstance(doc, dict) and ("settings" in doc or "variants" in doc) and set(doc) <= {"settings", "variants"}:
        variants = doc.get("variants") or {}
        if not isinstance(variants, dict):
            raise BadInputError(f"config file '{path}': variants must map names to {{steps: [...], settings: ...}}")
        doc = doc.get("settings") or {}
    if not isinstance(doc, dict) or not all(isinstance(v, dict) or v is None for v in doc.values()):
        raise BadInputError(f"config file '{path}' must map technique names to settings, e.g. "
                            "'tflite_int8: {calibration_frames: 200}'")
    return {str(k): dict(v or {}) for k, v in doc.items()}, {str(k): v for k, v in variants.items()}


def _data_config(data_roots, test_circuits, cache_dir, seed, need, geometry=None):
    roots = [data_roots] if isinstance(data_roots, (str, Path)) else list(data_roots or [])
    if not roots:
        raise BadInputError(f"technique(s) {', '.join(need)} need training data; pass --data with dataset folder(s)")
    kw = {"roots": roots, "cache_dir": cache_dir, "seed": seed}
    if geometry is not None:
        kw["geometry"] = geometry
    if test_circuits is not None:
        kw["test_circuits"] = test_circuits
    return DataConfig(**kw)


def baseline_variant_name(baseline) -> str:
    """The variant every other one is cross-checked against: the input model kept as it is."""
    return BASELINE_VARIANT.get(baseline.kind.name) or BASELINE_VARIANT[baseline.framework]


STEPS_DIR = ".steps"  # ARTIFACTS/.steps/<prefix key>/: what a chain's inner steps wrote, cached by prefix
BOOKKEEPING = ("settings", "seed", "threads", "source", "baseline_sha256", "input_kind", "chain_key", "duration_s",
               "size_bytes", "wall_s", "reused", "check_max_abs_diff", "check_frames", "check_frames_from",
               "steps", "step_records", "step_settings", "chain_duration_s", "chain_wall_s")


def _new_variant(name: str, tech: Technique, baseline, inp, settings, digest: str, seed: int, threads,
                 key: str) -> Variant:
    """The record of one step run on `inp`, for a chain that starts from `baseline`."""
    base = baseline_variant_name(baseline)
    framework = baseline.framework if baseline.framework in ("tf", "torch") else tech.framework
    return Variant(name=name, runtime=tech.runtime, artifact=None, framework=framework,
                   technique=name, baseline=None if name == base else base,
                   record={"settings": settings_dict(settings), "seed": seed, "threads": threads,
                           "source": str(inp.path), "baseline_sha256": digest,
                           "input_kind": inp.kind.name, "chain_key": key},
                   contract=baseline.contract.to_dict(), steps=[tech.name])


def _done_before(folder: Path, key: str) -> Variant | None:
    """The ok variant in `folder` made by the same chain prefix (same input, steps, settings, seed)."""
    if not (folder / VARIANT_FILE).is_file():
        return None
    try:
        old = read_variant(folder)
    except BadInputError:
        return None
    if old.status == "ok" and old.artifact and (folder / old.artifact).exists() and old.record.get("chain_key") == key:
        old.record["reused"] = True
        return old
    return None


def _cached_step(out: Path, roots: Sequence[Path], i: int, key: str, tech_name: str) -> tuple[Variant, Path] | None:
    """Step `i` of a chain done before with the same prefix key: in OUT/.steps, as the standalone
    variant of its technique (a first step), or the same in one of the `roots`."""
    for root in (out, *roots):
        targets = [root / STEPS_DIR / key[:24]] + ([root / tech_name] if i == 0 else [])
        for target in targets:
            v = _done_before(target, key)
            if v is not None:
                return v, target
    return None


def _prefix_keys(chain, settings_list, baseline, digest: str, seed: int) -> list[str]:
    key = root_key(digest, baseline.contract.digest, baseline.arch, baseline.arch_args)
    keys = []
    for step, st in zip(chain.steps, settings_list):
        key = chain_key(key, step.technique.name, st, seed)
        keys.append(key)
    return keys


def _available(tech: Technique) -> tuple[bool, str]:
    try:
        return tech.available()
    except Exception as exc:  # noqa: BLE001
        return False, f"availability check failed: {one_line(exc)}"


@dataclass
class _Plan:
    """The steps of one chain still to run (its cached prefix already taken), and what to do as each
    one's folder is committed and when the child is done with them."""

    items: list  # [(technique, settings, variant, folder)], in order
    state: dict  # {"current": the artifact the next step takes, ...}
    keys: set  # the prefix keys of these steps (two plans sharing one must not run side by side)
    before_write: Callable[[int, Variant], None]
    after_commit: Callable[[int, Variant, Path], None]
    finish: Callable[[list[Variant]], Variant]  # the steps' variants (up to the first not ok) -> the chain's
    started: float = 0.0


def _plan_chain(chain, settings_list, baseline, digest, out: Path, seed, threads, force,
                progress: Callable[[str], None] | None = None, roots: Sequence[Path] = ()) -> Variant | _Plan:
    """The chain's variant when nothing is left to run (done before, skipped, a step another chain
    ran), else the plan of its steps still to run: the cached prefix is taken as it is, and the other
    steps run in one child process (frameworks imported once; a crash fails the step it happened in).
    The last step writes OUT/<chain name>/, the others OUT/.steps/<prefix key>/ (reused by any chain
    with that prefix)."""
    keys = _prefix_keys(chain, settings_list, baseline, digest, seed)
    n = len(chain.steps)
    folder = out / chain.name
    last_tech = chain.steps[-1].technique
    final = _new_variant(chain.name, last_tech, baseline, baseline, settings_list[-1], digest, seed, threads, keys[-1])
    final.steps = chain.names
    if n > 1:
        per_step = {s.technique.name: settings_dict(st) for s, st in zip(chain.steps, settings_list)}
        if chain.registered:  # a technique's own name: its settings read as one mapping, as before
            final.record["settings"] = {k: v for s, st in zip(chain.steps, settings_list) if not s.inserted
                                        for k, v in settings_dict(st).items()}
            final.record["step_settings"] = per_step
        else:
            final.record["settings"] = per_step
    if not force:
        old = _done_before(folder, keys[-1])
        if old is not None:
            return old
    if not chain.takes(baseline.kind.name):
        first = chain.steps[0].technique
        wants = ", ".join(get_kind(k).description for k in first.accepts)
        who = "" if n == 1 else f"its first step {first.name} "
        reason = f"{who}needs {wants} as input; '{baseline.path}' is {baseline.kind.description}"
        if _holds_ok_variant(folder):  # never replace the other framework's ok variant with this skip
            final.status, final.reason = "skipped", reason
            return final
        return _finish_early(folder, final, "skipped", reason)
    for step in chain.steps:
        ok, why = _available(step.technique)
        if not ok:
            why = why or "not available here"
            return _finish_early(folder, final, "skipped", why if n == 1 else f"step {step.technique.name}: {why}")
    if n == 1 and not force:
        found = _cached_step(out, roots, 0, keys[0], chain.steps[0].technique.name)
        if found is not None:  # another chain ran this step already: take its output as it is
            return _adopt(found[1], found[0], folder, final)
    state = {"current": baseline, "records": [], "carry": {}, "parent": None}

    def done(i: int, v: Variant, target: Path) -> None:
        row, carry = _step_record(i, chain.steps[i].technique, v, out, target)
        state["records"].append(row)
        state["carry"].update(carry)
        state["parent"] = Path(os.path.relpath(target, out)).as_posix()
        state["current"] = variant_artifact(target, v)

    start = 0
    while start < n - 1 and not force:  # the cached prefix
        tech = chain.steps[start].technique
        found = _cached_step(out, roots, start, keys[start], tech.name)
        if found is None:
            break
        v, target = found
        if progress and n > 1:
            progress(f"  step {start + 1}/{n}: {tech.name} (already done)")
        done(start, v, target)
        start += 1

    def before_write(k: int, v: Variant) -> None:
        if start + k == n - 1 and n > 1:  # the chain's variant: earlier steps' details under its own
            rows = [*state["records"], _step_record(n - 1, last_tech, v, out, folder)[0]]
            v.record = {**state["carry"], **v.record}
            v.record["step_records"] = rows
            steps = [Produced.of(r) for r in rows]
            v.record["chain_duration_s"] = round(sum(r.duration_s or 0.0 for r in steps if not r.reused), 3)
            v.record["chain_wall_s"] = v.record["wall_s"]
            v.parent = state["parent"]

    items = []
    for i in range(start, n):
        tech = chain.steps[i].technique
        if i == n - 1:
            items.append((tech, settings_list[i], final, folder))
        else:
            items.append((tech, settings_list[i], _new_variant(f"{chain.name}@{i + 1}", tech, baseline, baseline,
                                                              settings_list[i], digest, seed, threads, keys[i]),
                          out / STEPS_DIR / keys[i][:24]))
        if progress and n > 1:
            progress(f"  step {i + 1}/{n}: {tech.name}")

    def finish(results: list[Variant]) -> Variant:
        for k, v in enumerate(results):
            i = start + k
            if v.status != "ok":
                if i == n - 1:
                    return v if n == 1 else _finish_early(folder, v, v.status,
                                                          f"step {n}/{n} {last_tech.name}: {v.reason}")
                final.record["step_records"] = list(state["records"])
                status = "skipped" if v.status == "skipped" else "failed"
                return _finish_early(folder, final, status, f"step {i + 1}/{n} {v.steps[0]} {v.status}: {v.reason}")
        return results[-1]

    plan = _Plan(items, state, set(keys[start:]), before_write, lambda k, v, target: done(start + k, v, target),
                 finish)
    return plan


def _adopt(src: Path, done: Variant, folder: Path, final: Variant) -> Variant:
    """Copy a cached step's folder to `folder` as the variant `final` describes (name, record)."""
    import shutil

    final.artifact, final.runtime, final.arch, final.arch_args = done.artifact, done.runtime, done.arch, done.arch_args
    final.record.update({k: v for k, v in done.record.items() if k not in ("source",)})
    final.record["reused"] = True
    with atomic_path(folder) as tmp:
        shutil.copytree(src, tmp)
        write_variant(tmp, final)
    return final


def _step_record(i: int, tech: Technique, v: Variant, out: Path, folder: Path) -> tuple[dict, dict]:
    """What one step did, for the chain's `step_records`, and its details to carry into the chain's
    record (what it measured, not bookkeeping)."""
    r, done = v.record, Produced.of(v.record)
    row = {"step": i + 1, "technique": tech.name, "runtime": v.runtime,
           "folder": Path(os.path.relpath(folder, out)).as_posix(),
           "settings": r.get("settings"), "size_bytes": done.size_bytes, "duration_s": done.duration_s,
           "check_max_abs_diff": done.check_max_abs_diff, "reused": done.reused}
    for key in ("macs", "macs_after", "student_macs", "sparsity_overall", "params_after", "student_params"):
        if key in r:
            row[key] = r[key]
    return row, {k: val for k, val in r.items() if k not in BOOKKEEPING}


def _job_data(data_cfg, seed) -> dict | None:
    if data_cfg is None:
        return None
    return {"roots": [str(r) for r in data_cfg.roots], "test_circuits": list(data_cfg.test_circuits),
            "cache_dir": None if data_cfg.cache_dir is None else str(data_cfg.cache_dir), "seed": seed,
            "geometry": vars(data_cfg.geometry)}


def _run_plans(plans: list[_Plan], seed, threads, data_cfg, timeout, max_mse_ratio: float,
               tags: list) -> list[tuple[object, Variant]]:
    """Run the plans' steps one chain after another in ONE child process (the frameworks imported
    once for all of them); each step's folder is written atomically as soon as the child reports it
    done. A chain whose step raises fails alone and the child goes on. If the child dies (a crash,
    a timeout), the chain it was in is run again alone in a fresh child, so a crash is that chain's
    own verdict, and the chains after it go on in another child. Returns (tag, the chain's variant)
    for every plan, in order."""
    if not plans:
        return []
    import shutil

    tmps: list[list[Path]] = []
    for plan in plans:
        row = []
        for _, _, _, folder in plan.items:
            ensure_writable_dir(folder.parent)
            tmp = folder.parent / temp_name(folder.name)
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir()
            row.append(tmp)
        tmps.append(row)
    finished: list[tuple[object, Variant]] = []
    try:
        job = {"chains": [{"steps": [{"name": t.name, "module": t.module, "settings": settings_dict(st),
                                      "out": str(tmp)} for (t, st, _, _), tmp in zip(plan.items, row)],
                           "baseline": str(plan.state["current"].path), "arch": plan.state["current"].arch,
                           "arch_args": plan.state["current"].arch_args,
                           "contract": plan.state["current"].contract.to_dict()}
                          for plan, row in zip(plans, tmps)],
               "seed": seed, "threads": threads, "data": _job_data(data_cfg, seed), "max_mse_ratio": max_mse_ratio}
        steps = sum(len(p.items) for p in plans)
        t0 = time.perf_counter()
        for plan in plans:
            plan.started = t0
        out = _run_child(job, None if timeout is None else timeout * steps)
        replies = (out.reply or {}).get("chains") or []
        for k, (plan, row) in enumerate(zip(plans, tmps)):
            reply = replies[k] if k < len(replies) else {}
            if not reply.get("over") and len(plans) > 1:  # the child died in this chain: run it alone, then the rest
                for tmp in row:
                    shutil.rmtree(tmp, ignore_errors=True)
                rest = _run_plans([plan], seed, threads, data_cfg, timeout, max_mse_ratio, [tags[k]])
                rest += _run_plans(plans[k + 1:], seed, threads, data_cfg, timeout, max_mse_ratio, tags[k + 1:])
                return finished + rest
            variants = _commit(plan, row, reply, out, timeout)
            finished.append((tags[k], plan.finish(variants)))
    finally:
        for row in tmps:
            for tmp in row:
                shutil.rmtree(tmp, ignore_errors=True)
    return finished


def _commit(plan: _Plan, tmps: list[Path], reply: dict, out, timeout) -> list[Variant]:
    """Write each step the child reported done to its folder (temp name, then rename); the variants
    up to and including the first that is not ok."""
    import shutil

    replies = reply.get("steps") or []
    results: list[Variant] = []
    for k, ((tech, _, variant, folder), tmp) in enumerate(zip(plan.items, tmps)):
        variant.record["source"] = str(plan.state["current"].path)
        variant.record["input_kind"] = plan.state["current"].kind.name
        if k < len(replies):
            r = replies[k]
            variant.artifact = r["artifact"]
            variant.runtime = r.get("runtime") or variant.runtime
            variant.arch = r.get("arch")
            variant.arch_args = r.get("arch_args") or {}
            variant.record.update(r["record"])
            variant.record["wall_s"] = r.get("wall_s", round(time.perf_counter() - plan.started, 3))
            plan.before_write(k, variant)
            write_variant(tmp, variant)
            if folder.exists():
                shutil.rmtree(folder)
            os.replace(tmp, folder)
            plan.after_commit(k, variant, folder)
            results.append(variant)
            continue
        if "skipped" in reply:
            status, reason = "skipped", reply["skipped"]
        elif "failed" in reply:
            status, reason = "failed", reply["failed"]
        else:
            reason = out.reason or failure_reason("the technique's process", out.returncode,
                                                  timed_out=out.timed_out, timeout=timeout)
            status = "failed"
        variant.record["wall_s"] = reply.get("wall_s", round(time.perf_counter() - plan.started, 3))
        results.append(_finish_early(folder, variant, status, reason))
        break
    return results


def _holds_ok_variant(folder: Path) -> bool:
    try:
        return (folder / VARIANT_FILE).is_file() and read_variant(folder).status == "ok"
    except BadInputError:
        return False


def _finish_early(folder: Path, variant: Variant, status: str, reason: str) -> Variant:
    """A folder holding only variant.json (failed / skipped)."""
    variant.status, variant.reason, variant.artifact = status, reason, None
    with atomic_path(folder) as tmp:
        tmp.mkdir()
        write_variant(tmp, variant)
    return variant


def _run_child(job: dict, timeout: float | None = None):
    """Run the steps in a fresh interpreter (isolation.run_job: not a fork, TensorFlow is not
    fork-safe); its Outcome (the reply holds every step done, even when the process died later)."""
    return run_job(["-c", "from pilotopt.techniques._runner import child_cli; child_cli()"], job, timeout=timeout,
                   scratch_prefix="pilotopt-technique-", who="the technique's process",
                   hint=None if os.environ.get(DEBUG_ENV) else "rerun with PILOTOPT_DEBUG=1 to see its output")


# -- the child -------------------------------------------------------------------------------------
def child_cli() -> None:
    import sys

    child_main(json.loads(Path(sys.argv[1]).read_text()), sys.argv[2])


def child_main(job: dict, reply_file: str) -> None:
    """Run each chain: apply each step to the previous one's output. The reply file is rewritten
    after every step, so the parent keeps what was done before a crash; a chain's entry is marked
    `over` when it ended (done, failed or skipped), so the parent knows which one the child died in."""
    set_env_defaults()
    chains: list[dict] = []
    reply: dict = {"chains": chains}
    data_cfg = None
    try:
        if job.get("data"):
            data = dict(job["data"])
            data["geometry"] = Geometry(**data["geometry"]) if data.get("geometry") else Geometry()
            data_cfg = DataConfig(**data)
    except Exception as exc:  # noqa: BLE001 - no chain can run
        chains.extend({"steps": [], "failed": one_line(exc), "over": True} for _ in job["chains"])
        write_json(reply_file, reply)
        return
    for chain in job["chains"]:
        done: list[dict] = []
        entry: dict = {"steps": done}
        chains.append(entry)
        write_json(reply_file, reply)
        t0 = time.perf_counter()
        try:
            current = open_artifact(chain["baseline"], arch=chain.get("arch"),
                                    arch_args=chain.get("arch_args") or None, contract=chain["contract"])
            for step in chain["steps"]:
                result, current = _child_apply(step, current, job, data_cfg)
                result["wall_s"] = round(time.perf_counter() - t0, 3)
                done.append(result)
                write_json(reply_file, reply)
        except RuntimeUnavailable as exc:
            entry["skipped"] = str(exc)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: BLE001 - that chain's failure (even SystemExit); the next one runs
            if os.environ.get(DEBUG_ENV):
                traceback.print_exc()
            entry["failed"] = one_line(exc)
        entry["wall_s"] = round(time.perf_counter() - t0, 3)
        entry["over"] = True
        write_json(reply_file, reply)
        _between_chains()


def _between_chains() -> None:
    """Let the next chain start as in a fresh process where it matters: Keras' layer-name counters
    and graph state reset, memory of the last chain's models released."""
    import gc
    import sys

    if "tensorflow" in sys.modules:
        import tensorflow as tf

        tf.keras.backend.clear_session()
    gc.collect()


def _child_apply(step: dict, baseline, job: dict, data_cfg) -> tuple[dict, object]:
    """One step on `baseline` (an Artifact): (its reply, the artifact it wrote)."""
    if step.get("module"):
        importlib.import_module(step["module"])
    tech = _TECHNIQUES.get(step["name"]) or techniques().get(step["name"])
    if tech is None:
        raise RuntimeError(f"technique '{step['name']}' is not registered in the child process")
    settings = tech.make_settings(step["settings"])
    if not tech.takes(baseline.kind.name):
        raise RuntimeError(f"{tech.name} cannot take {baseline.kind.description} (what the previous step wrote)")
    out = Path(step["out"])
    ctx = TechniqueContext(baseline, settings, job["seed"], job["threads"], out, data_cfg)
    t0 = time.perf_counter()
    with quiet_conversion():
        result = tech.apply(ctx)
    duration = time.perf_counter() - t0
    dest = out / result.artifact
    if not dest.exists():
        raise RuntimeError(f"technique wrote no {result.artifact}")
    record = dict(result.record)
    record["duration_s"] = round(duration, 3)
    record["size_bytes"] = artifact_bytes(dest)
    runtime = result.runtime or tech.runtime
    produced = open_artifact(dest, arch=baseline.arch if _weights_only(dest) else None,
                             arch_args=baseline.arch_args or None, contract=baseline.contract.to_dict())
    with quiet_conversion():
        record.update(_check(tech, ctx, produced, runtime, float(job.get("max_mse_ratio", MAX_MSE_RATIO))))
    return ({"artifact": result.artifact, "record": record, "runtime": runtime, "arch": produced.arch,
             "arch_args": produced.arch_args}, produced)


def _weights_only(path: Path) -> bool:
    kind = detect_kind(path)
    return kind is not None and kind.needs_arch


def _check(tech: Technique, ctx: TechniqueContext, produced, runtime: str, max_mse_ratio: float = MAX_MSE_RATIO) -> dict:
    """The result against its input model, both fed through the input contract exactly as the
    evaluation will feed them: a variant is ok only if it loads and runs that way, stays within the
    technique's tolerance on CHECK_FRAMES frames, and still computes its input's function: no output
    turned constant, and (with data) its MSE on SCORE_FRAMES training frames within `max_mse_ratio`
    times its input's. Raises RuntimeError with the reason."""
    import numpy as np

    labels = None
    if ctx._data_config is not None:
        split = ctx.train.split
        order = np.random.default_rng(ctx.seed).permutation(len(split))[:max(1, min(SCORE_FRAMES, len(split)))]
        images, labels = split.batch(np.sort(order))
        close = np.isin(np.sort(order), order[:CHECK_FRAMES])  # the first CHECK_FRAMES of the same permutation
        kind = "train"
    else:
        g = ctx.contract.geometry
        t = ctx.sequence_length
        shape = (CHECK_FRAMES, t, *g.image_shape) if t > 1 else (CHECK_FRAMES, *g.image_shape)
        images, kind = np.random.default_rng(1234).integers(0, 256, size=shape).astype(np.uint8), "random"
        close = np.ones(len(images), bool)
    reference = load_artifact_predictor(ctx.baseline, threads=ctx.threads).predict(images)
    got = load_artifact_predictor(produced, runtime=runtime, threads=ctx.threads).predict(images)
    diff = float(np.max(np.abs(got[close] - reference[close])))
    where = f"on {int(close.sum())} {kind} frames"
    if tech.tolerance is not None and (not np.isfinite(diff) or diff > tech.tolerance):
        raise RuntimeError(f"outputs differ from the baseline by {diff:.3g} (> {tech.tolerance:g}) {where}")
    out = {"check_max_abs_diff": diff, "check_frames": int(close.sum()), "check_frames_from": kind}
    lost = function_lost(got, reference, labels, max_mse_ratio)
    out.update(lost.record)
    if lost.reason:
        raise RuntimeError(f"{lost.reason} on {len(images)} {kind} frames: the variant no longer computes its "
                           "input model's function")
    return out
