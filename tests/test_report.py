"""The report folder (pilotopt.report): schema, CSV, Markdown, Pareto fronts, the recommendation
under each constraint, HTML escaping, and report.html in a real headless browser.

Inputs are built here in the shapes the other stages write (offline rows as in
evaluate/results.py, drives with sim/metrics.py names), so nothing depends on /work/runs."""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import pytest
from PIL import Image as PILImage

from pilotopt.errors import BadInputError
from pilotopt.pipeline.drive_jobs import latency_scales
from pilotopt.report import REPORT_SCHEMA, build_report
from pilotopt.decide import Constraints, recommend, summarize
from pilotopt.decide.pareto import front_points, pareto_front
from pilotopt.records import BreakingProbe, DriveJob, VariantSummary, drives_of, offline_rows
from pilotopt.sim.score import autonomy, driving_score
from pilotopt.report.tables import CSV_COLUMNS

EVIL = "ValueError: <script>alert(1)</script> & <lambda>"


# ----------------------------------------------------------------------------- factories
def stats(p50: float) -> dict:
    return {"n": 300, "mean_ms": p50 * 1.02, "std_ms": p50 * 0.1, "p50_ms": p50, "p90_ms": p50 * 1.2,
            "p99_ms": p50 * 1.5, "min_ms": p50 * 0.8, "max_ms": p50 * 4}


def offline_row(name, *, framework="tf", runtime="litert", baseline="keras", status="ok", reason=None,
                mb=None, mse=None, p50=None, base_p50=1.0, base_mb=19.2):
    """One row of a pilotopt.results/1 document; failed/skipped rows carry nulls like the real ones."""
    row = {"name": name, "technique": name, "framework": framework, "runtime": runtime,
           "artifact": f"/runs/variants/{name}/model", "baseline": baseline, "status": status, "reason": reason,
           "cached": False,
           "size": {"bytes": None, "gzip_bytes": None, "params": None, "nonzero_params": None, "params_source": None},
           "error": None, "latency_ms": None, "throughput": None, "memory_mb": None, "cross_check": None}
    if status != "ok":
        return row
    row["size"] = {"bytes": int(mb * 1e6), "gzip_bytes": int(mb * 0.8e6), "params": 1595522,
                   "nonzero_params": 1595000, "params_source": "test"}
    row["error"] = {"n": 500, "mse_v": mse * 1.9, "mse_w": mse * 0.1, "mse_mean": mse,
                    "mae_v_mps": 1.0, "mae_w_radps": 0.09}
    row["latency_ms"] = {"model": stats(p50), "brain_step": stats(p50 + 0.3)}
    row["throughput"] = {"batch": 64, "fps": 1000.0 / p50, "calls": 40, "batch_p50_ms": p50 * 20,
                         "batch_mean_ms": p50 * 21}
    row["memory_mb"] = {"rss_before_load": 38.0, "peak_rss": 300.0, "model_share": 262.0}
    if baseline:
        row["cross_check"] = {"baseline": baseline, "n": 500, "max_abs_diff": 0.01, "mse": 1e-6,
                              "speedup_p50": base_p50 / p50, "size_ratio": mb / base_mb}
    return row


def offline_doc(rows):
    return {"schema": "pilotopt.results/1", "created": "2026-01-01T00:00:00+0000", "machine": {"cpu_count": 2},
            "protocol": {"threads": 2}, "testset": {"samples": 500, "circuits": ["simple"]}, "variants": rows}


def drive(variant, circuit, direction="anticlockwise", *, completed=True, status="ok", reason=None,
          framework="tf", speed=8.0, plot=None, video=None):
    metrics = None
    if status == "ok":
        metrics = {"percentage_completed": 100.0 if completed else 42.5, "lap_completed": completed,
                   "laps_completed": int(completed), "lap_seconds": 80.0 if completed else None,
                   "average_speed": speed, "position_deviation_mae": 0.12, "position_deviation_max": 0.6,
                   "brain_iterations_frequency": 55.0, "mean_inference_time": 0.4, "mean_brain_step_time": 0.8,
                   "real_time_factor": 2.5, "termination": "laps_completed" if completed else "off_track",
                   "deadline_misses": 0.0, "suddenness": 0.02, "sim_seconds": 80.0, "wall_seconds": 32.0,
                   "interventions": 0 if completed else 2, "bm_position_deviation": 2.3,
                   "completed_distance": 400.0 if completed else 170.0, "brain_steps": 1600,
                   "interventions_mode": not completed, "score_version": "pilotopt.driving_score/1",
                   "latency_source": "distribution", "latency_scale": 1.0, "condition": "default", "repetition": 0,
                   "off_track": not completed}
        metrics["autonomy"] = autonomy(metrics["interventions"], 80.0)
        metrics["driving_score"] = driving_score(metrics["percentage_completed"] / 100, metrics["autonomy"], 0.12)
    return {"variant": variant, "framework": framework, "circuit": circuit, "direction": direction,
            "status": status, "reason": reason, "metrics": metrics, "plot": plot, "video": video,
            **latency_scales(_job("default", 1.0))}


def _job(condition, latency_scale):
    """A realtime drive job under `condition` (only what latency_scales reads matters)."""
    return DriveJob(variant="v", runtime="torch", artifact="model.pt", circuit="simple", direction="clockwise",
                    condition=condition, mode="realtime", latency_scale=latency_scale, out_dir="out")


def technique(name, framework="tf", status="ok", reason=None):
    return {"name": name, "framework": framework, "status": status, "reason": reason,
            "description": f"{name} optimisation"}


def png(path: Path, colour=(200, 30, 30)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    PILImage.new("RGB", (48, 32), colour).save(path)
    return path


def standard_offline():
    """keras baseline; tflite_dynamic_range is the fastest but fails a lap; tflite_int8 completes all;
    tf_qat is outside the 10 % accuracy limit; torch variants are far less accurate."""
    return offline_doc([
        offline_row("keras", runtime="keras", baseline=None, mb=19.232, mse=0.00704, p50=1.086),
        offline_row("tflite_fp32", mb=6.388, mse=0.00704, p50=0.475),
        offline_row("tflite_int8", mb=1.644, mse=0.00703, p50=0.117),
        offline_row("tflite_dynamic_range", mb=1.626, mse=0.00704, p50=0.085),
        offline_row("tf_prune", mb=6.388, mse=0.00471, p50=0.251),
        offline_row("tf_qat", mb=1.615, mse=0.00900, p50=0.100),
        offline_row("tflite_int8_broken", status="failed", reason=EVIL),
        offline_row("torch_eager", framework="torch", runtime="torch", baseline=None, mb=6.1, mse=0.0788, p50=2.1),
    ])


def standard_closed_loop(out_dir: Path, elsewhere: Path):
    rel = png(out_dir / "drives" / "keras_simple.png").relative_to(out_dir).as_posix()
    absolute = str(png(elsewhere / "int8 simple.png", (30, 30, 200)))
    drives = []
    for v in ("keras", "tflite_fp32", "tflite_int8", "tflite_dynamic_range"):
        drives.append(drive(v, "simple", "anticlockwise", speed=8.4,
                            plot=rel if v == "keras" else absolute if v == "tflite_int8" else None))
        drives.append(drive(v, "simple", "clockwise", speed=8.2))
        drives.append(drive(v, "montreal", completed=v != "tflite_dynamic_range", speed=9.6,
                            plot="drives/missing.png" if v == "keras" else None,
                            video="drives/keras_montreal.mp4" if v == "keras" else None))
    drives.append(drive("tf_prune", "simple", status="failed", reason="brain crashed: <NaN> output"))
    return drives


def standard_techniques():
    names = ["keras", "tflite_fp32", "tflite_int8", "tflite_dynamic_range", "tf_prune", "tf_qat",
             "tflite_int8_broken"]
    return ([technique(n) for n in names] + [technique("torch_eager", "torch")]
            + [technique("tf_trt", status="skipped", reason="needs an NVIDIA GPU <CUDA> & TensorRT"),
               technique("tf_cluster", status="failed", reason="RuntimeError: clustering <dense_1> & co failed")])


META = {"profile": "quick", "config": {"frameworks": ["tf", "torch"], "circuits": ["simple", "montreal"]},
        "machine": {"cpu_count": 2}, "timings": {"optimize_s": 12.5}}


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """The standard report, built once (plots take most of a second)."""
    out = tmp_path_factory.mktemp("report")
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    drives = standard_closed_loop(out, elsewhere)
    paths = build_report(standard_offline(), drives, standard_techniques(), out,
                         constraints={"max_latency_ms": 0.2}, meta=META)
    return {"out": out, "paths": paths, "drives": drives, "elsewhere": elsewhere}


def rows_for(offline=None, drives=None) -> list[VariantSummary]:
    offline = standard_offline() if offline is None else offline
    return summarize(offline_rows(offline), drives_of(drives or []))


# ----------------------------------------------------------------------------- Pareto
def test_pareto_front_hand_made():
    pts = [(1, 5), (2, 3), (3, 4), (4, 1), (2, 3), (5, 5), (0.5, 10), (4, 2)]
    # (3,4) is beaten by (2,3); (5,5) by everything; (4,2) by (4,1) (equal x, lower y); ties both stay
    assert pareto_front(pts) == [6, 0, 1, 4, 3]
    assert pareto_front([]) == []
    assert pareto_front([(1.0, 1.0)]) == [0]
    rows = [VariantSummary(key=n, name=n, status=st, size_mb=x, mse_mean=y)
            for n, st, x, y in (("a", "ok", 1.0, 2.0), ("b", "ok", 2.0, 1.0), ("c", "ok", 3.0, 3.0),
                                ("d", "failed", 0.1, 0.1),  # not ok: never on the front
                                ("e", "ok", None, 0.1))]  # unmeasured: not plotted
    pts_rows, front = front_points(rows, "size_mb")
    assert [r.name for r in pts_rows] == ["a", "b", "c"]
    assert [r.name for r in front] == ["a", "b"]
    # the search's objectives: score maximised, latency minimised
    assert pareto_front([(80.0, 0.2), (70.0, 0.3), (90.0, 0.5)], ["maximize", "minimize"]) == [0, 2]


def test_pareto_in_report(report):
    doc = json.loads((report["out"] / "results.json").read_text())
    # latency front: dynamic_range (fastest), int8 (more accurate, slower), tf_prune (most accurate)
    assert doc["pareto"]["pareto_latency_mse"] == ["tf/tflite_dynamic_range", "tf/tflite_int8", "tf/tf_prune"]
    assert doc["pareto"]["pareto_size_mse"] == ["tf/tf_qat", "tf/tflite_dynamic_range", "tf/tflite_int8",
                                                "tf/tf_prune"]
    for stem in ("pareto_latency_mse", "pareto_size_mse"):
        p = report["paths"][stem]
        assert p.is_file() and p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_drives_match_offline_variants_and_unknown_variants_still_appear():
    drives = [drive("tflite_int8", "simple", framework=None),  # no framework: matched by unique name
              drive("ghost", "simple", completed=False)]
    rows = {r.key: r for r in rows_for(drives=drives)}
    assert rows["tf/tflite_int8"].cl_runs_total == 1 and rows["tf/tflite_int8"].cl_all_completed
    ghost = rows["tf/ghost"]
    assert not ghost.in_offline and ghost.status == "skipped" and ghost.reason == "not evaluated offline"
    assert (ghost.cl_runs_completed, ghost.cl_runs_total) == (0, 1)


# ----------------------------------------------------------------------------- results.json / csv
def test_results_json_schema_and_content(report):
    paths, out = report["paths"], report["out"]
    assert set(paths) == {"results_json", "results_csv", "report_md", "report_html", "pareto_latency_mse",
                          "pareto_size_mse", "decision", "correlation"}  # one condition only: no heatmap
    assert all(p.is_file() and p.parent.is_relative_to(out) for p in paths.values())
    text = (out / "results.json").read_text()
    doc = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))
    assert doc["schema"] == REPORT_SCHEMA == "pilotopt.report/2"
    assert sorted(doc) == ["breaking_points", "closed_loop", "conditions", "constraints", "files", "meta", "offline", "pareto",
                           "predictive", "recommendation", "schema", "score_formulas", "search", "techniques",
                           "variants"]
    assert doc["search"] is None  # no `pilotopt search` over this run
    assert doc["score_formulas"]["version"] == "pilotopt.driving_score/1"
    assert doc["predictive"]["n"] == 5 and list(doc["conditions"]) == ["default"]
    assert [v["key"] for v in doc["variants"]] == [
        "tf/keras", "tf/tflite_fp32", "tf/tflite_int8", "tf/tflite_dynamic_range", "tf/tf_prune", "tf/tf_qat",
        "tf/tflite_int8_broken", "torch/torch_eager"]
    assert doc["offline"]["schema"] == "pilotopt.results/1" and len(doc["offline"]["rows"]) == 8
    assert doc["offline"]["testset"]["samples"] == 500
    assert len(doc["closed_loop"]) == len(report["drives"]) and len(doc["techniques"]) == 10
    assert doc["constraints"] == {"max_latency_ms": 0.2, "max_size_mb": None, "must_complete": False,
                                  "mse_tolerance": 0.1, "score_tolerance": 5.0, "latency_tie": 0.25,
                                  "relax_conditions": []}
    assert doc["meta"] == META
    assert doc["files"]["report_html"] == "report.html"
    broken = next(v for v in doc["variants"] if v["name"] == "tflite_int8_broken")
    assert broken["status"] == "failed" and broken["mse_mean"] is None and broken["violations"] == ["not_ok_offline"]
    int8 = next(v for v in doc["variants"] if v["name"] == "tflite_int8")
    assert int8["size_bytes"] == 1644000 and isinstance(int8["size_bytes"], int)
    assert int8["recommended"] is True and int8["eligible"] is True
    rec = doc["recommendation"]
    assert rec["recommended"] == "tf/tflite_int8" and rec["runner_up"] is None
    assert rec["excluded"]["driving"] == ["tf/tflite_dynamic_range"]
    # sorted keys at every level: deterministic diffs between runs
    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True) + "\n"


def test_outputs_are_deterministic(report):
    """Rebuilding from the same inputs into the same folder writes byte-identical files (links to
    files outside the folder are relative, so the folder itself must be the same)."""
    names = ("results.json", "results.csv", "report.md", "report.html", "figures/pareto_latency_mse.png",
             "figures/pareto_size_mse.png")
    before = {n: (report["out"] / n).read_bytes() for n in names}
    build_report(standard_offline(), report["drives"], standard_techniques(), report["out"],
                 constraints={"max_latency_ms": 0.2}, meta=META)
    for n in names:
        assert (report["out"] / n).read_bytes() == before[n], n
    assert not [p.name for p in report["out"].rglob(".*tmp*")]  # atomic writes left no temp files


def test_csv_columns_and_aggregates(report):
    with open(report["out"] / "results.csv", newline="") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames) == CSV_COLUMNS
        rows = {r["name"]: r for r in reader}
    assert len(rows) == 8
    for col in ("size_mb", "mse_mean", "latency_p50_ms", "cl_circuits_completed", "cl_circuits_total",
                "cl_mean_average_speed", "cl_mean_position_deviation_mae", "cl_mean_brain_frequency_hz",
                "cl_mean_real_time_factor"):
        assert col in CSV_COLUMNS
    dr = rows["tflite_dynamic_range"]
    assert (dr["cl_runs_completed"], dr["cl_runs_total"]) == ("2", "3")
    assert (dr["cl_circuits_completed"], dr["cl_circuits_total"]) == ("1", "2")  # montreal lap failed
    assert float(dr["cl_mean_average_speed"]) == pytest.approx((8.4 + 8.2 + 9.6) / 3)
    assert float(dr["cl_mean_brain_frequency_hz"]) == pytest.approx(55.0)
    assert float(dr["cl_mean_real_time_factor"]) == pytest.approx(2.5)
    assert float(dr["size_mb"]) == pytest.approx(1.626) and float(dr["latency_p50_ms"]) == pytest.approx(0.085)
    assert dr["pareto_latency_mse"] == "true" and dr["recommended"] == "false"
    prune = rows["tf_prune"]  # its only drive crashed: counted, not completed, no means
    assert (prune["cl_runs_completed"], prune["cl_runs_total"], prune["cl_mean_average_speed"]) == ("0", "1", "")
    assert rows["keras"]["violations"] == "max_latency_ms" and rows["keras"]["eligible"] == "false"
    broken = rows["tflite_int8_broken"]
    assert broken["status"] == "failed" and broken["mse_mean"] == "" and broken["size_bytes"] == ""
    assert broken["reason"] == EVIL
    assert rows["tf_qat"]["cl_runs_total"] == "0" and rows["tf_qat"]["violations"] == "accuracy"


# ----------------------------------------------------------------------------- report.md
def test_markdown_lists_techniques_tables_and_plots(report):
    md = (report["out"] / "report.md").read_text()
    for t in standard_techniques():
        assert f"| {t['name']} |" in md, t["name"]
    assert "| tf_trt | TensorFlow | skipped (needs an NVIDIA GPU &lt;CUDA&gt; &amp; TensorRT) |" in md
    assert "| tf_cluster | TensorFlow | failed (RuntimeError: clustering &lt;dense_1&gt; &amp; co failed) |" in md
    # the variant that failed evaluation shows its reason; no raw '<' reaches the Markdown
    assert "failed (ValueError: &lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;lambda&gt;)" in md
    assert "<script>" not in md and "<lambda>" not in md
    # study-form headers, one offline table per framework, closed-loop tables per circuit
    assert ("| Method | Runtime | Size (MB) | gzip (MB) | MSE | MAE v (m/s) | MAE w (rad/s) | "
            "Inference time p50 (ms) | Speed-up vs baseline | MMACs | GMAC/s | % of peak | Precision | Framework | "
            "Status |") in md
    assert "### TensorFlow" in md and "### PyTorch" in md
    assert "### Circuit: simple" in md and "### Circuit: montreal" in md
    for label in ("Average speed (m/s)", "Position deviation MAE (m)", "Brain iteration frequency (Hz)",
                  "Mean inference time (ms)", "Real-time factor", "Lap completed"):
        assert label in md
    assert "| - | keras | TensorFlow | keras | 1.086 | 19.232 | 0.00704 | 80.6 | 100 | 0.120 | 3 | 3 |" in md
    assert "| 1 | tflite_int8 | TensorFlow | litert | 0.117 | 1.644 | 0.00703 | 80.6 |" in md
    assert "| tflite_dynamic_range | TensorFlow | litert | 0.085 | 1.626 | 0.00704 | 63.5 [" in md  # with its CI
    # images: Pareto plots and trajectories (relative, absolute elsewhere), a missing one is said missing
    assert "](figures/pareto_latency_mse.png)" in md and "](figures/pareto_size_mse.png)" in md
    assert "](drives/keras_simple.png)" in md
    assert "int8%20simple.png)" in md
    assert "image not found" in md and "missing.png" in md
    assert "[Video: keras on montreal (anticlockwise)](drives/keras_montreal.mp4)" in md
    # the document opens with the decision: the recommendation against its baseline, the rule, the exclusions
    headings = re.findall(r"^## (.+)$", md, flags=re.M)
    assert headings[:3] == ["Decision", "Candidates", "Does offline error predict driving?"]
    assert headings[-1] == "Run information"
    head = md.split("## Candidates", 1)[0]
    assert "**Deploy tflite_int8 (tf, litert)" in head
    assert "| recommended | tflite_int8 | litert | 0.117 | 9.3 |" in head and "| baseline | keras | keras |" in head
    assert ("Excluded by max latency: keras (1.086 ms), tflite_fp32 (0.475 ms), tf_prune (0.251 ms), "
            "torch_eager (2.100 ms).") in head
    assert "Excluded by the driving gate: tflite_dynamic_range (driving score 63.5" in head
    assert "Excluded by the accuracy limit: tf_qat (MSE 0.009)" in head
    assert "Rule: " in head and "within 10 %" in head and "ties" in head
    assert "](figures/decision.png)" in head
    assert "Spearman rho" in md and "](figures/correlation.png)" in md
    assert "pilotopt.driving_score/1" in md  # the formulas, with their version
    # the variant that lost a lap is named with its interventions and its steering MSE against keras'
    assert ("tflite_dynamic_range: 2/3 clean laps, 0.7 interventions per drive; its steering (w) MSE is 1.0x "
            "its baseline's while its mean MSE is 1.00x.") in md


# ----------------------------------------------------------------------------- recommendation
def _rec(constraints=None, offline=None, drives=None):
    return recommend(rows_for(offline, drives if drives is not None else standard_closed_loop_plain()),
                     constraints)


def standard_closed_loop_plain():
    drives = []
    for v in ("keras", "tflite_fp32", "tflite_int8", "tflite_dynamic_range"):
        drives += [drive(v, "simple"), drive(v, "simple", "clockwise"),
                   drive(v, "montreal", completed=v != "tflite_dynamic_range")]
    return drives + [drive("tf_prune", "simple", status="failed", reason="crash")]


def test_recommendation_gates_on_driving_then_ranks_by_speed():
    rec = _rec()
    # dynamic_range is faster but drove worse (a failed lap: score far below keras'); tf_qat is
    # outside +10 % of the keras MSE
    assert rec["recommended"] == "tf/tflite_int8"
    assert rec["ranking"] == ["tf/tflite_int8", "tf/tflite_fp32", "tf/keras"]
    assert rec["excluded"]["driving"] == ["tf/tflite_dynamic_range", "tf/tf_prune"]  # tf_prune's drive crashed
    assert rec["excluded"]["accuracy"] == ["tf/tf_qat", "torch/torch_eager"]
    assert rec["reference"] == {"variant": "tf/keras", "mse": 0.00704, "source": "baseline"}
    assert rec["score_reference"]["variant"] == "tf/keras"
    assert rec["score_reference"]["limit"] == pytest.approx(rec["score_reference"]["low"] - 5.0)
    assert rec["unavailable"] == ["tf/tflite_int8_broken"]
    assert rec["runner_up"] == "tf/tflite_fp32"
    assert any("Runner-up: tflite_fp32" in line and "slower beyond the noise (0.475 ms vs 0.117 ms" in line
               for line in rec["explanation"])
    assert any(line.startswith("Excluded by the driving gate: tflite_dynamic_range (driving score")
               for line in rec["explanation"])


def _on_target(p50=None, reason=None, diff=0.0):
    """An OfflineRow's on_target as evaluate --target writes it (`diff`: its commands' largest
    difference from this machine's on the reference frames, tolerance 1e-4)."""
    if p50 is None:
        return {"target": "ssh://pi@car", "status": "not runnable", "reason": f"not runnable on ssh://pi@car: {reason}"}
    device = {"hostname": "car", "pid": 7, "machine": "aarch64", "cpu": "Cortex-A76", "cores": 4,
              "system": "Linux 6.6", "python": "3.11.2"}
    return {"target": "ssh://pi@car", "status": "ok", "device": device, "runtime": "litert", "threads": 4,
            "brain_step": stats(p50), "brain_step_samples_ms": [p50] * 5,
            "check": {"frames": 20, "max_abs_dv": diff, "max_abs_dw": 0.0, "tolerance": 1e-4, "ok": diff <= 1e-4}}


def test_with_a_target_the_rule_ranks_by_the_device_and_never_picks_what_cannot_run_there():
    """On the host tflite_int8 (0.117 ms) beats tflite_fp32 (0.475 ms); on the device fp32 is the
    faster one, and keras (no edge runtime) is not a candidate there, while still the reference."""
    doc = standard_offline()
    on = {"tflite_fp32": _on_target(3.0), "tflite_int8": _on_target(9.0), "tflite_dynamic_range": _on_target(2.0),
          "tf_prune": _on_target(4.0), "tf_qat": _on_target(2.5),
          "keras": _on_target(reason="the edge package runs litert, onnxruntime, openvino models on a device")}
    for row in doc["variants"]:
        if row["name"] in on:
            row["on_target"] = on[row["name"]]
    rec = _rec(offline=doc)
    host = _rec()
    assert host["ranking"][:2] == ["tf/tflite_int8", "tf/tflite_fp32"]
    assert rec["recommended"] == "tf/tflite_fp32" and rec["ranking"] == ["tf/tflite_fp32", "tf/tflite_int8"]
    assert rec["excluded"]["target"] == ["tf/keras", "torch/torch_eager"]  # torch_eager was never timed there
    assert rec["reference"]["variant"] == "tf/keras"  # the baseline still sets the accuracy and driving bar
    assert rec["summary"].endswith("on ssh://pi@car.") and "3.000 ms" in rec["summary"]
    assert any(line.startswith("On ssh://pi@car (car (Cortex-A76, aarch64, 4 cores))") for line in rec["explanation"])
    assert any(line.startswith("Not runnable on ssh://pi@car: keras (the edge package runs") for line in rec["explanation"])
    # one reason is said once for every variant it rules out
    for row in doc["variants"]:
        if row["name"] == "tf_qat":
            row["on_target"] = on["keras"]
    grouped = [line for line in _rec(offline=doc)["explanation"] if line.startswith("Not runnable")]
    assert len(grouped) == 1 and grouped[0].count("the edge package runs") == 1, grouped
    assert "keras, tf_qat (the edge package runs" in grouped[0] or "tf_qat, keras (the edge package runs" in grouped[0]
    for row in doc["variants"]:
        if row["name"] == "tf_qat":
            row["on_target"] = on["tf_qat"]
    # a variant whose commands on the device are not the ones driven here is not a candidate there either
    for row in doc["variants"]:
        if row["name"] == "tflite_fp32":
            row["on_target"] = _on_target(3.0, diff=0.07)
    rec = _rec(offline=doc)
    assert rec["recommended"] == "tf/tflite_int8" and "tf/tflite_fp32" in rec["excluded"]["target"]
    assert any("tflite_fp32 (its commands there differ from this machine's by up to 0.07" in line
               for line in rec["explanation"])


def test_the_decision_figure_plots_the_devices_latency_on_a_target_run(tmp_path):
    from pilotopt.decide.verdict import DecidedVariant
    from pilotopt.report.figures import decided_latency, decision_plot

    rows = [DecidedVariant(key="tf/a", name="a", status="ok", latency_p50_ms=0.4, cl_score_mean=80.0, target="ssh://pi@car",
                           target_status="ok", target_brain_step_p50_ms=44.0),
            DecidedVariant(key="tf/k", name="k", status="ok", latency_p50_ms=2.7, cl_score_mean=60.0, target="ssh://pi@car",
                           target_status="not runnable")]
    plotted, target = decided_latency(rows)
    assert target == "ssh://pi@car" and [r.latency_p50_ms for r in plotted] == [44.0, None]
    assert decided_latency([r.model_copy(update={"target": None}) for r in rows])[0][0].latency_p50_ms == 0.4
    assert decision_plot(rows, {"recommended": "tf/a"}, tmp_path / "d.png").read_bytes()[:4] == b"\x89PNG"


def test_drives_draw_the_targets_samples_when_the_run_has_a_target():
    from pilotopt.pipeline.config import load_config
    from pilotopt.pipeline.run import drive_samples
    from pilotopt.records import OfflineRow

    row = offline_row("tflite_fp32", mb=6.388, mse=0.00704, p50=0.475)
    row["brain_step_samples_ms"] = [0.8] * 5
    here = OfflineRow.from_json(row)
    there = OfflineRow.from_json({**row, "on_target": _on_target(3.0)})
    cannot = OfflineRow.from_json({**row, "on_target": _on_target(reason="no runtime")})
    plain, targeted = load_config(None, {}), load_config(None, {"target": {"device": "ssh://pi@car"}})
    assert drive_samples(plain, there) == [0.8] * 5  # no target in the run: this machine's
    assert drive_samples(targeted, there) == [3.0] * 5
    assert drive_samples(targeted, cannot) == drive_samples(targeted, here) == [0.8] * 5
    with pytest.raises(BadInputError, match="closed_loop.latency: distribution"):
        load_config(None, {"target": {"device": "ssh://pi@car"}, "closed_loop": {"latency": "wall"}})
    with pytest.raises(BadInputError, match="unknown target 'pi@car'"):
        load_config(None, {"target": {"device": "pi@car"}})


def _condition_drives(variant, condition, clean, reps=3, latency_scale=1.0):
    """Drive records as drive_jobs.new_record fills them (the latency scales from the parsed condition)."""
    out = []
    for rep in range(reps):
        d = drive(variant, "simple", completed=clean)
        d["repetition"], d["condition"] = rep, condition
        if condition in ("default",) or condition.startswith("slow:"):
            d.update(latency_scales(_job(condition, latency_scale)))
        else:  # a test-only condition name the registry does not know: no slow-down
            d.update({"condition_latency_scale": 1.0, "latency_scale_applied": latency_scale, "slowdown_only": False})
        out.append(d)
    return out


def test_a_slowdown_is_reported_as_applied_not_as_named():
    """closed_loop.latency_scale 2 and condition slow:5 drive at 10x the measured latency: the report
    says 10x (read from the drive records), not the 5 in the condition's name."""
    drives = _condition_drives("tflite_int8", "default", True, latency_scale=2.0) + \
        _condition_drives("tflite_int8", "slow:5", True, latency_scale=2.0)
    assert {d["latency_scale_applied"] for d in drives} == {2.0, 10.0}
    (row,) = summarize([], drives_of(drives))
    assert row.cl_max_slow == 10.0 and row.cl_slow_tested == 10.0


def test_condition_gate_excludes_the_fastest_variant_that_fails_one_condition():
    """'stubfog' is a condition only tflite_int8 (the fastest) fails: it drives the default condition
    as well as the baseline, yet is not recommended, and the reason names the condition and numbers."""
    doc = offline_doc([offline_row("keras", runtime="keras", baseline=None, mb=19.2, mse=0.0070, p50=1.0),
                       offline_row("tflite_int8", mb=1.6, mse=0.0070, p50=0.10),
                       offline_row("tflite_fp32", mb=6.4, mse=0.0070, p50=0.40)])
    drives = []
    for v in ("keras", "tflite_int8", "tflite_fp32"):
        drives += _condition_drives(v, "default", True) + _condition_drives(v, "stubfog", v != "tflite_int8")
    rec = _rec(None, doc, drives)
    assert rec["recommended"] == "tf/tflite_fp32"
    assert rec["excluded"]["conditions"] == ["tf/tflite_int8"]
    assert rec["condition_reasons"]["tf/tflite_int8"] == ["stubfog: 0/3 clean laps, baseline 3/3"]
    assert any(line.startswith("Excluded by the condition gate: tflite_int8 (stubfog: 0/3 clean laps, baseline 3/3")
               for line in rec["explanation"])
    # the same drives without the condition: the fastest wins, so the gate is what excluded it
    plain = [d for d in drives if d["condition"] == "default"]
    assert _rec(None, doc, plain)["recommended"] == "tf/tflite_int8"
    # a user who relaxes the condition gets the fastest back
    assert _rec({"relax_conditions": ["stubfog"]}, doc, drives)["recommended"] == "tf/tflite_int8"
    # a candidate never driven under the condition is not recommended either
    unseen = [d for d in drives if not (d["variant"] == "tflite_int8" and d["condition"] == "stubfog")]
    rec = _rec(None, doc, unseen)
    assert rec["recommended"] == "tf/tflite_fp32"
    assert rec["condition_reasons"]["tf/tflite_int8"] == ["stubfog: not driven"]


def test_breaking_points_reach_the_decision_table_the_figure_and_results_json(tmp_path):
    from pilotopt.breaking_point import find_breaking_point

    doc = offline_doc([offline_row("keras", runtime="keras", baseline=None, mb=19.2, mse=0.0070, p50=1.0),
                       offline_row("tflite_int8", mb=1.6, mse=0.0070, p50=0.10)])
    drives = _condition_drives("keras", "default", True) + _condition_drives("tflite_int8", "default", True)
    points = []
    for key, name, role, limit in (("tf/tflite_int8", "tflite_int8", "recommended", 180.0),
                                   ("tf/keras", "keras", "baseline", 24.0)):
        bp = find_breaking_point(lambda s, limit=limit: BreakingProbe(scale=s, clean=s <= limit,
                                                                      score_mean=90.0 if s <= limit else 10.0))
        points.append({"key": key, "name": name, "framework": "tf", "role": role, **bp.to_json(), "text": bp.text()})
    paths = build_report(doc, drives, [], tmp_path, breaking_points=points)
    results = json.loads(paths["results_json"].read_text())
    assert [b["name"] for b in results["breaking_points"]] == ["tflite_int8", "keras"]
    assert results["breaking_points"][1]["scale"] <= 24.0 < results["breaking_points"][1]["failed_at"]
    md = paths["report_md"].read_text()
    decision = md.split("## Decision")[1].split("##")[0]
    assert points[0]["text"] in decision and points[1]["text"] in decision and "all tested" not in decision
    assert paths["breaking"].is_file() and "figures/breaking.png" in md


def test_latency_inside_the_noise_is_a_tie_broken_by_driving():
    """dynamic_range is 5 % slower than tf_cqat but drives closer to the line: a tie on speed, won
    on the driving score (the demo's old pick went the other way). tf_cqat still passes the gate."""
    doc = offline_doc([offline_row("keras", runtime="keras", baseline=None, mb=19.2, mse=0.0070, p50=1.0),
                       offline_row("tflite_dynamic_range", mb=1.6, mse=0.0070, p50=0.178),
                       offline_row("tf_cqat", mb=1.6, mse=0.0070, p50=0.169),
                       offline_row("tflite_int8", mb=1.6, mse=0.0070, p50=0.30)])

    def drives_of(v, deviation):
        out = []
        for rep in range(3):
            d = drive(v, "simple")
            d["repetition"] = rep
            d["metrics"]["position_deviation_mae"] = deviation
            d["metrics"]["driving_score"] = driving_score(1.0, 100.0, deviation)
            out.append(d)
        return out

    drives = (drives_of("keras", 0.046) + drives_of("tflite_dynamic_range", 0.046) + drives_of("tf_cqat", 0.07)
              + drives_of("tflite_int8", 0.02))
    rec = _rec(None, doc, drives)
    assert rec["recommended"] == "tf/tflite_dynamic_range"  # slower by 5 %: a tie, and it drives better
    assert rec["ranking"][:2] == ["tf/tflite_dynamic_range", "tf/tf_cqat"]
    assert rec["tie_groups"]["tf/tflite_dynamic_range"] == rec["tie_groups"]["tf/tf_cqat"]
    assert rec["ranking"][2] == "tf/tflite_int8"  # drives best, but 78 % slower: not a tie
    assert any("as fast within the noise" in line and "drives worse" in line for line in rec["explanation"])
    assert "differences below 25 % are ties" in rec["rule"]
    strict = _rec({"latency_tie": 0.0}, doc, drives)
    assert strict["recommended"] == "tf/tf_cqat"  # no tie allowed: the fastest wins


def test_latency_constraint_excludes_slow_variants():
    rec = _rec({"max_latency_ms": 0.3})
    assert rec["excluded"]["max_latency_ms"] == ["tf/keras", "tf/tflite_fp32", "torch/torch_eager"]
    assert rec["recommended"] == "tf/tflite_int8"
    assert any(line.startswith("Excluded by max latency: keras (1.086 ms), tflite_fp32 (0.475 ms)")
               for line in rec["explanation"])


def test_size_constraint_excludes_fast_but_big_variant():
    doc = standard_offline()
    doc["variants"].append(offline_row("tflite_big_fast", mb=50.0, mse=0.00705, p50=0.05))
    drives = standard_closed_loop_plain() + [drive("tflite_big_fast", "simple"),
                                             drive("tflite_big_fast", "simple", "clockwise"),
                                             drive("tflite_big_fast", "montreal")]
    assert _rec(None, doc, drives)["recommended"] == "tf/tflite_big_fast"  # fastest, completes every lap
    rec = _rec({"max_size_mb": 10}, doc, drives)
    assert rec["excluded"]["max_size_mb"] == ["tf/keras", "tf/tflite_big_fast"]
    assert rec["recommended"] == "tf/tflite_int8"
    assert any("tflite_big_fast (50.000 MB)" in line for line in rec["explanation"])
    # a latency limit does not exclude it: it is the fastest of all
    assert "tf/tflite_big_fast" not in _rec({"max_latency_ms": 0.3}, doc, drives)["excluded"]["max_latency_ms"]


def test_must_complete_excludes_variant_that_failed_a_lap():
    free = _rec({"max_latency_ms": 0.1})
    assert free["recommended"] == "tf/tflite_dynamic_range"  # the only one fast enough; laps not required
    rec = _rec({"max_latency_ms": 0.2, "must_complete": True})
    assert "tf/tflite_dynamic_range" in rec["excluded"]["must_complete"]
    assert "tf/tf_prune" in rec["excluded"]["must_complete"]  # its drive crashed
    assert "tf/tf_qat" in rec["excluded"]["must_complete"]  # never driven
    assert "tf/tflite_dynamic_range" not in rec["ranking"]
    assert rec["recommended"] == "tf/tflite_int8"
    line = next(x for x in rec["explanation"] if x.startswith("Excluded by must complete every lap"))
    assert "tflite_dynamic_range (2/3 laps)" in line and "tf_qat (never driven)" in line


def test_nothing_satisfies_says_so_and_names_the_main_constraint(tmp_path):
    rec = _rec({"max_latency_ms": 0.01, "max_size_mb": 5.0})
    assert rec["recommended"] is None and rec["runner_up"] is None and rec["ranking"] == []
    assert rec["most_excluding_constraint"] == "max_latency_ms"
    assert rec["summary"].startswith("No variant satisfies the constraints; max latency (max_latency_ms) "
                                     "excluded the most: 7 of 7 candidates")
    paths = build_report(standard_offline(), standard_closed_loop_plain(), standard_techniques(), tmp_path,
                         constraints={"max_latency_ms": 0.01, "max_size_mb": 5.0})
    md = paths["report_md"].read_text()
    assert "**No variant satisfies the constraints; max latency (max_latency_ms) excluded the most" in md
    assert json.loads(paths["results_json"].read_text())["recommendation"]["recommended"] is None


def test_accuracy_gate_falls_back_to_most_accurate_and_other_edge_cases():
    rec = _rec({"max_size_mb": 1.62})  # only tf_qat fits, and it is 28 % worse than keras
    assert rec["recommended"] == "tf/tf_qat" and rec["accuracy_fallback"] is True
    assert any("falling back to the most accurate" in line for line in rec["explanation"])
    # no baseline evaluated: the reference is the best constrained candidate
    only = offline_doc([offline_row("a", mb=2.0, mse=0.010, p50=0.2), offline_row("b", mb=2.0, mse=0.0105, p50=0.1)])
    rec = _rec(None, only, [])
    assert rec["reference"]["source"] == "best constrained candidate" and rec["recommended"] == "tf/b"
    assert _rec({"mse_tolerance": 0.01}, only, [])["recommended"] == "tf/a"
    nothing = _rec(None, offline_doc([offline_row("x", status="skipped", reason="no GPU")]), [])
    assert nothing["recommended"] is None and "nothing to recommend" in nothing["summary"]


def test_bad_inputs_are_one_line_errors(tmp_path):
    with pytest.raises(BadInputError, match="unknown constraint"):
        Constraints.from_any({"max_latency": 1.0})
    with pytest.raises(BadInputError, match="max_size_mb must be a positive"):
        Constraints.from_any({"max_size_mb": -1})
    with pytest.raises(BadInputError, match="schema"):
        build_report({"schema": "other/1", "variants": []}, [], [], tmp_path)
    with pytest.raises(BadInputError, match="status"):
        build_report(standard_offline(), [drive("keras", "simple", status="done")], [], tmp_path)


# ----------------------------------------------------------------------------- report.html (static)
def test_html_escapes_input_text_and_is_self_contained(report):
    html = (report["out"] / "report.html").read_text()
    assert html.count("<script>") == 1  # ours; the reason's <script> is text
    assert "<lambda>" not in html and "<CUDA>" not in html and "<dense_1>" not in html
    assert "ValueError: &lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;lambda&gt;" in html
    assert "needs an NVIDIA GPU &lt;CUDA&gt; &amp; TensorRT" in html
    assert "brain crashed: &lt;NaN&gt; output" in html
    assert not re.search(r"(src|href)=\"(https?:)?//", html)  # nothing fetched from the network
    srcs = re.findall(r'<img src="([^"]{0,40})', html)
    assert len(srcs) == 6 and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert "image not found" in html
    # the same sections as report.md, and the decision first
    for heading in ("Decision", "Candidates", "Offline evaluation", "Techniques", "Closed loop", "Pareto fronts",
                    "Driving score and autonomy", "Run information"):
        assert f">{heading}</h2>" in html
    assert html.index("<h2") == html.index('<h2 id="decision">')
    assert '<div class="gallery">' in html  # trajectories as small multiples


# ----------------------------------------------------------------------------- report.html (browser)
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


@pytest.mark.skipif(not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
                    reason="headless Chromium not installed (/usr/bin/chromium, /usr/bin/chromedriver); "
                           "`make test` installs it with apt-get (chromium chromium-driver)")
def test_html_in_headless_chromium(report):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    # the report lives next to nothing else: copy only report.html, so relative files cannot help it
    lonely = report["elsewhere"] / "lonely"
    lonely.mkdir(exist_ok=True)
    page = lonely / "report.html"
    shutil.copy(report["out"] / "report.html", page)

    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--proxy-server=http://127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND",
                "--window-size=1400,1000"):
        opts.add_argument(arg)  # the proxy and resolver rules make any network fetch fail
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=opts)
    try:
        driver.set_page_load_timeout(30)
        driver.get(page.as_uri())
        # get() may return at "interactive" on a loaded machine (the page inlines six images): wait
        from selenium.webdriver.support.ui import WebDriverWait

        WebDriverWait(driver, 30).until(lambda d: d.execute_script("return document.readyState") == "complete")
        imgs = driver.execute_script(
            "return Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.src.slice(0, 5)]);")
        assert len(imgs) == 6
        assert all(done and width > 0 and src == "data:" for done, width, src in imgs), imgs
        resources = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name);")
        assert all(not r.startswith(("http:", "https:")) for r in resources), resources

        def body_rows(table_id):
            return driver.find_elements(By.CSS_SELECTOR, f"#{table_id} tbody tr")

        assert len(body_rows("candidates")) == 7 and len(body_rows("decision")) == 2
        assert len(body_rows("offline-tf")) == 7 and len(body_rows("offline-torch")) == 1
        assert len(body_rows("techniques")) == 10
        assert len(body_rows("circuit-simple")) == 9 and len(body_rows("circuit-montreal")) == 4
        assert len(body_rows("meta")) == 5 and len(body_rows("failures")) == 3

        heads = driver.find_elements(By.CSS_SELECTOR, "#candidates thead th")
        labels = [h.text for h in heads]

        def column(col):
            return [r.find_elements(By.TAG_NAME, "td")[col].get_attribute("data-sort")
                    for r in body_rows("candidates")]

        size_col = labels.index("Size (MB)")
        heads[size_col].click()
        nums = [float(v) for v in column(size_col)]
        # numeric, not text order ("19.232" < "6.388" as text)
        assert nums == sorted(nums) and nums[0] == pytest.approx(1.615) and nums[-1] == pytest.approx(19.232)
        assert heads[size_col].get_attribute("aria-sort") == "ascending"
        score_col = labels.index("Driving score [95 % CI]")
        for _ in range(2):  # both directions: the two variants never driven stay last
            heads[score_col].click()
            values = column(score_col)
            assert values[-2:] == ["", ""] and values.count("") == 2
        nums = [float(v) for v in values if v]
        assert nums == sorted(nums, reverse=True)
        heads[labels.index("Method")].click()
        names = [r.find_elements(By.TAG_NAME, "td")[1].text for r in body_rows("candidates")]
        assert names == sorted(names, key=str.lower)
    finally:
        driver.quit()


def test_chains_show_their_steps_and_slow_int8_is_flagged(tmp_path):
    chain = offline_row("torch_distill+onnx_int8_static", framework="torch", runtime="onnxruntime", baseline="torch",
                        mb=0.3, mse=0.006, p50=0.09)
    chain.update(steps=["torch_distill", "onnx_int8_static"], precision="int8", macs=7_600_000,
                 step_sizes=[{"technique": "torch_distill", "size_bytes": 1_100_000},
                             {"technique": "onnx_int8_static", "size_bytes": 300_000}])
    rows = [dict(offline_row("torch", framework="torch", runtime="torch", baseline=None, mb=6.4, mse=0.007, p50=0.5),
                 macs=28_200_000),
            dict(offline_row("torch_export", framework="torch", runtime="torch_export", baseline="torch", mb=6.4,
                             mse=0.007, p50=0.6), precision="fp32"),
            dict(offline_row("torch_static", framework="torch", runtime="torch_export", baseline="torch", mb=1.7,
                             mse=0.007, p50=3.7), precision="int8"),
            dict(offline_row("onnx_fp32", framework="torch", runtime="onnxruntime", baseline="torch", mb=6.4,
                             mse=0.007, p50=0.25), precision="fp32"),
            dict(offline_row("torch_prune_global+onnx_int8_static", framework="torch", runtime="onnxruntime",
                             baseline="torch", mb=0.5, mse=0.007, p50=0.2), precision="int8",
                 steps=["torch_prune_global", "onnx_int8_static"]),
            chain]
    paths = build_report(offline_doc(rows), [], [], tmp_path)
    md = paths["report_md"].read_text()
    assert "torch_distill → onnx_int8_static" in md and "1.10 → 0.30" in md  # steps and size after each
    assert "torch_static (int8) is slower than torch_export in torch_export: 3.700 ms vs 0.600 ms" in md
    assert "torch_distill+onnx_int8_static (int8) is slower" not in md  # 0.09 ms beats onnx_fp32's 0.25 ms
    assert "| 7.6 | 84.4 |" in md  # MMACs and the GMAC/s they give at its p50
    assert "| 3.700 | 0.27 | 28.2 | 7.6 |" in md  # torch_static keeps its baseline's MACs: 28.2 M at 3.7 ms
    # a chain of weight pruning and quantization (no structure step) keeps them too: 28.2 M at 0.2 ms
    chain_row = next(r for r in json.loads(paths["results_json"].read_text())["variants"]
                     if r["name"] == "torch_prune_global+onnx_int8_static")
    assert chain_row["macs"] == 28_200_000 and chain_row["gmacs_per_s"] == pytest.approx(141.0)


def test_publish_makes_the_docs_tables_from_results_json(report, tmp_path):
    from pilotopt.errors import BadInputError
    from pilotopt.report.publish import publish

    run = tmp_path / "run.json"
    run.write_text(json.dumps({"stages": {"train": {"seconds": 100.0, "ok": True}}, "total_seconds": 130.0}))
    md = publish(report["out"] / "results.json", run, command="pilotopt run --profile full")
    assert "    pilotopt run --profile full" in md and "| train | 100 |" in md and "| total | 130 |" in md
    assert "## Side by side with the study" in md
    # ours / study: dynamic range is 1.626 / 6.388 MB of the LiteRT fp32 baseline; the study had 0.2502
    assert "| tflite_dynamic_range | Dynamic Range Q | 0.255 / 0.2502 | 1.000 / 0.9976 | 0.179 / 0.6195 |" in md
    assert "| keras | 80.6 | 100 | 0.120 | 2.3 | 3/3 |" in md  # closed loop with clean laps
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(BadInputError, match="not readable JSON"):
        publish(bad)


def test_a_search_over_the_run_gets_its_own_section_with_the_front(tmp_path):
    """A `pilotopt search` results.json given to the report: its front as a table and a plot, the
    recommendation starred, and the per-layer sensitivity table."""
    front = png(tmp_path / "front.png")
    from pilotopt.records import SearchTrial

    summary = VariantSummary(key="torch/s-1", name="s-1", cl_score_mean=90.0, cl_score_lo=89.0, cl_score_hi=91.0,
                             latency_p50_ms=0.071, size_mb=0.11)
    s1 = SearchTrial(name="s-1", state="complete", fidelity=3, summary=summary, score=88.5, mse_ratio=1.2,
                     candidate={"chain": "torch_distill>onnx_int8_static",
                                "settings": {"onnx_int8_static": {"per_channel": False}}})
    s2 = s1.model_copy(update={"name": "s-2", "score": 10.0, "candidate": {"chain": "onnx_fp32", "settings": {}}})
    search = {"trials_finished": 2, "wall_s": 60.0, "objectives": {"score": "maximize", "latency": "minimize"},
              "front": ["s-1"], "recommended": "s-1", "menu": {"faster_than_menu_pick": True},
              "files": {"front_plot": str(front)},
              "trials": [{"name": "s-1", "chain": "torch_distill>onnx_int8_static", "result": s1.to_json()},
                         {"name": "s-2", "chain": "onnx_fp32", "result": s2.to_json()}],
              "sensitivity": {"chain": "torch_distill>onnx_int8_static", "score_all_int8": 88.5,
                              "layers": [{"layer": "/conv1/Conv", "score": 91.0, "score_change": 2.5,
                                          "mse_ratio": 1.1, "latency_p50_ms": 0.08}]}}
    out = tmp_path / "report"
    paths = build_report(standard_offline(), standard_closed_loop_plain(), standard_techniques(), out, search=search)
    md = paths["report_md"].read_text()
    section = md.split("## Search", 1)[1].split("\n## ", 1)[0]
    assert "★ torch_distill&gt;onnx_int8_static" in section and "per_channel=False" in section  # > escaped
    assert "onnx_fp32" not in section  # only the front is tabled
    assert "figures/search_front.png" in section and paths["search_front"].is_file()
    assert "/conv1/Conv" in section and "+2.5" in section
    doc = json.loads(paths["results_json"].read_text())
    assert doc["search"]["recommended"] == "s-1"
    again = build_report(standard_offline(), standard_closed_loop_plain(), standard_techniques(), out)
    assert "## Search" not in again["report_md"].read_text() and not (out / "figures" / "search_front.png").exists()


def test_offline_tables_show_each_variant_as_a_share_of_the_measured_peak(tmp_path):
    """With the machine's GEMM peaks beside the offline latencies, a variant's achieved GMAC/s is
    shown as a share of the peak of its own precision."""
    doc = standard_offline()
    for r in doc["variants"]:
        r["macs"] = 28_000_000
        r["precision"] = "int8" if "int8" in r["name"] else "fp32"
    doc["machine_peaks"] = {"fp32_gmacs": 100.0, "int8_gmacs": 400.0, "threads": 2}
    paths = build_report(doc, [], [], tmp_path)
    out = json.loads(paths["results_json"].read_text())
    rows = {r["name"]: r for r in out["variants"]}
    keras = rows["keras"]
    assert keras["peak_share"] == pytest.approx(keras["gmacs_per_s"] / 100.0)
    int8 = next(r for n, r in rows.items() if "int8" in n and r.get("gmacs_per_s"))
    assert int8["peak_share"] == pytest.approx(int8["gmacs_per_s"] / 400.0)
    assert "% of peak" in paths["report_md"].read_text()
    assert out["offline"]["machine_peaks"]["int8_gmacs"] == 400.0
    assert "peak_share" in paths["results_csv"].read_text().splitlines()[0]
