"""Breaking points of the variants a decision rests on: the recommended one, the runner-up and the
baselines. Each probe drives every circuit, direction and repetition of the run's protocol under
the condition `slow:S`; a scale is clean when every one of those drives completes a clean lap. The
drives are cached like every other drive (a rerun probes nothing again) but kept out of the
closed-loop rows, so they never enter the condition gate."""

from __future__ import annotations

from typing import Callable

from pilotopt.breaking_point import BreakingPoint, find_breaking_point
from pilotopt.decide import baseline_keys, recommend
from pilotopt.pipeline.drive_jobs import drive_variant
from pilotopt.records import BreakingProbe, Drive, VariantSummary, drives_of

Say = Callable[[str], None]
RunJobs = Callable[[Callable[[dict], dict], list[dict], Callable], list]  # an executor's map


def chosen_variants(rows: list[VariantSummary], constraints: dict) -> list[dict]:
    """[{"key", "name", "framework", "role"}] of the recommended variant, the runner-up and the
    driven baselines, by the report's rule over the summaries `rows`."""
    rec = recommend(rows, constraints)
    by_key = {r.key: r for r in rows}
    roles: dict[str, str] = {}
    if rec.get("recommended"):
        roles[rec["recommended"]] = "recommended"
    if rec.get("runner_up"):
        roles[rec["runner_up"]] = "runner-up"
    for key in sorted(baseline_keys(rows)):
        if by_key[key].cl_runs_total:
            roles.setdefault(key, "baseline")
    return [{"key": k, "name": by_key[k].name, "framework": by_key[k].framework, "role": role}
            for k, role in roles.items()]


def known_verdicts(drives: list[Drive], chosen: list[dict], protocol_size: int) -> dict[str, dict[float, BreakingProbe]]:
    """{variant key: {scale: verdict}} from the run's own drives in the
    default condition (1x) and under pure `slow:N` conditions (N x), where a variant has the whole
    protocol there (`protocol_size` drives): the search starts from them instead of driving them again."""
    out: dict[str, dict[float, BreakingProbe]] = {}
    for c in chosen:
        cells: dict[float, list[Drive]] = {}
        for d in drives:
            if d.variant != c["name"] or (d.framework or None) != (c.get("framework") or None):
                continue
            scale = d.condition_latency_scale if d.slowdown_only else None  # from the record
            if scale is not None:
                cells.setdefault(scale, []).append(d)
        out[c["key"]] = {s: BreakingProbe(scale=s, clean=all(d.clean_lap for d in ds),
                                          clean_drives=sum(d.clean_lap for d in ds), drives=len(ds),
                                          score_mean=sum(d.score for d in ds) / len(ds))
                         for s, ds in cells.items() if len(ds) >= protocol_size}
    return out


def search_job(job: dict) -> dict:
    """One variant's whole breaking-point search in one worker process (an executor job): the
    model is loaded once for every probe, and each probe's drives step together
    (drive_jobs.drive_variant). `job`: the variant's drives in the default condition (`drives`),
    `cap`, `resolution` and the `known` verdicts; scales are relative to the run's latency scale."""
    loaded: dict = {}

    def probe(scale: float) -> BreakingProbe:
        drives = [d.model_copy(update={"condition": f"slow:{scale:g}"}) for d in job["drives"]]
        recs = drives_of(drive_variant({"drives": drives}, loaded))
        clean = sum(1 for r in recs if r.clean_lap)
        scores = [r.score for r in recs]
        return BreakingProbe(scale=scale, clean=bool(recs) and clean == len(recs), clean_drives=clean,
                             drives=len(recs), score_mean=sum(scores) / len(scores) if scores else None)

    found = find_breaking_point(probe, start=1.0, cap=job["cap"], resolution=job["resolution"], known=job["known"])
    return {"status": "ok", "breaking_point": found.to_json()}


def breaking_points(chosen: list[dict], drives: dict[str, list], run_jobs: RunJobs, *, latency_scale: float,
                    cap: float, resolution: float, say: Say, known: dict[str, dict] | None = None) -> list[dict]:
    """One record per chosen variant: the largest slow-down of its measured latencies (x the run's
    `latency_scale`: relative to the machine the latency was measured on) at which every drive of
    the protocol is clean, with the probes (scale, clean drives, mean score). `drives`: each chosen
    variant's drives in the default condition, by key; `run_jobs(fn, jobs, on_done)` runs one
    `search_job` per variant (an executor's map)."""
    chosen = [c for c in chosen if drives.get(c["key"])]
    if not chosen:
        return []
    say(f"breaking points: {', '.join(c['name'] for c in chosen)} (latency doubled until a drive fails, then "
        f"bisected to {100 * resolution:g} %, at most {cap:g}x)")
    jobs = [{"variant": c["name"], "drives": drives[c["key"]], "cap": cap / latency_scale, "resolution": resolution,
             "known": (known or {}).get(c["key"])} for c in chosen]
    found: dict[int, dict] = {}

    def on_done(i: int, job: dict, result) -> None:
        c = chosen[i]
        if not (isinstance(result, dict) and result.get("status") == "ok"):
            reason = result.get("reason") if isinstance(result, dict) else str(result)
            found[i] = {**c, "scale": None, "failed_at": None, "capped": False, "resolution": resolution,
                        "cap": cap, "probes": [], "text": f"not measured ({reason})", "latency_scale": latency_scale}
            say(f"breaking point of {c['name']}: not measured ({reason}); a rerun resumes from its finished drives")
            return
        doc = result["breaking_point"]
        bp = BreakingPoint(doc["scale"], doc["failed_at"], doc["capped"], doc["resolution"], doc["cap"],
                           [BreakingProbe.from_json(p) for p in doc["probes"]]).scaled(latency_scale)
        fresh = sum(1 for p in bp.probes if p.source != "run")
        say(f"breaking point of {c['name']}: {bp.text()} ({fresh} probes besides the run's own drives)")
        found[i] = {**c, **bp.to_json(), "text": bp.text(), "latency_scale": latency_scale}

    run_jobs(search_job, jobs, on_done)
    return [found[i] for i in range(len(chosen)) if i in found]
