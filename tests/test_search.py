"""`pilotopt search` on a tiny run: the space and its errors, a 3-trial search on the local engine
and on Ray Tune giving the same front for the same seed, a killed search that resumes without
computing a finished trial again (resumed on Ray), and the replay YAML rebuilding the recommended variant."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from pilotopt.errors import BadInputError

TINY_RUN = """\
profile: quick
threads: 1
data:
  circuits: [nurburgring, simple]
  directions: [anticlockwise]
  laps: 0.08
  test_circuits: [simple]
  workers: 1
train:
  frameworks: [torch]
  model: pilotnet_student
  epochs: 1
techniques: [torch]
technique_defaults: {epochs: 1, max_train_frames: 64, calibration_frames: 16}
offline: {max_frames: 32, min_calls: 5, min_seconds: 0.02, throughput_batch: 8, peak_seconds: 0}
closed_loop: {mode: lockstep, timeout_s: 2.0, repeats: 1, conditions: [dusk]}
report: {must_complete: false}  # a 3 s drive ends before the lap does
"""

# lockstep drives and the MMACs objective: nothing measured on the wall clock reaches the front
SPACE = """\
trials: 3
seed: 3
latency: macs
screen: {first_drive_min_score: 0}
sensitivity_layers: 0
space:
  baselines: [torch]
  slots:
    structure:
      none: {}
      torch_prune_global: {amount: {low: 0.2, high: 0.6}}
    precision:
      onnx_fp32: {}
      onnx_int8_static: {per_channel: [true, false]}
"""


def _cli(*args, cwd=None, wait=True):
    cmd = [sys.executable, "-m", "pilotopt", *map(str, args)]
    if wait:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=cwd)
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, cwd=cwd)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("search")
    (root / "run.yaml").write_text(TINY_RUN)
    (root / "space.yaml").write_text(SPACE)
    r = _cli("run", "--config", root / "run.yaml", "--out", root / "run")
    assert r.returncode == 0, r.stderr[-3000:]
    return root


# -- the space, no run needed -------------------------------------------------------------------------
@pytest.mark.parametrize("space, says", [
    ({"slots": {"precision": {"no_such": {}}}}, "unknown technique 'no_such'"),
    ({"slots": {"precision": {"onnx_int8_static": {"bits": [4, 8]}}}}, "unknown setting(s) bits"),
    ({"slots": {"precision": {"none": {}, "onnx_fp32": {}}}}, "cannot be none"),
    ({"slots": {"precision": {"onnx_int8_static": {"calibration_frames": {"low": 9, "high": 2}}}}}, "low <= high"),
    ({"slot": {}}, "expected keys baselines and slots"),
])
def test_space_errors_name_the_key_and_the_fix(space, says):
    from pilotopt.search.space import parse_space

    with pytest.raises(BadInputError) as e:
        parse_space(space)
    assert says in str(e.value) and "\n" not in str(e.value)


def test_choices_follow_the_artifact_kind():
    """After channel pruning (TorchScript) only runtimes that take TorchScript are offered; a Keras
    baseline gets no PyTorch structure pass, and the parameter name carries the kind."""
    from pilotopt.search.space import DEFAULT_SPACE, Replay, feasible, parse_space, suggest

    space = parse_space(DEFAULT_SPACE)
    precision = space.slots[-1]
    after_prune = {o.technique for o in feasible(precision, "torchscript")}
    assert "onnx_int8_static" in after_prune and "openvino_int8" in after_prune
    assert "torch_static" not in after_prune and "tflite_int8_fallback" not in after_prune
    structure = {o.technique for o in feasible(space.slots[0], "keras_h5")}
    assert structure == {None}
    cand = suggest(Replay({"baseline": "torch", "structure@torch_checkpoint": "torch_channel_prune",
                           "torch_channel_prune.pruning_ratio": 0.4, "precision@torchscript": "onnx_int8_static",
                           "onnx_int8_static.per_channel": False, "onnx_int8_static.calibration_frames": 100}),
                   space, {"torch": "torch_checkpoint"})
    assert cand.steps == ("torch_channel_prune", "onnx_int8_static")
    assert cand.settings["torch_channel_prune"] == {"pruning_ratio": 0.4}
    assert cand.name == suggest(Replay({"baseline": "torch", "structure@torch_checkpoint": "torch_channel_prune",
                                        "torch_channel_prune.pruning_ratio": 0.4,
                                        "precision@torchscript": "onnx_int8_static",
                                        "onnx_int8_static.per_channel": False,
                                        "onnx_int8_static.calibration_frames": 100}),
                                space, {"torch": "torch_checkpoint"}).name


def test_bad_search_config_is_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("trials: 3\nsamplr: tpe\n")
    r = _cli("search", "--run", tmp_path, "--config", bad)
    assert r.returncode != 0 and "unknown key 'samplr'" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    r = _cli("search", "--run", tmp_path, "--trials", "2")
    assert r.returncode != 0 and "is not a finished pilotopt run" in r.stderr and "Traceback" not in r.stderr
    r = _cli("search", "--run", tmp_path, "--sampler", "grid")
    assert r.returncode != 0 and "sampler" in r.stderr and len(r.stderr.strip().splitlines()) == 1


# -- searches on the tiny run ---------------------------------------------------------------------------
def test_show_space_names_the_slots_and_the_run_baselines(tiny_run):
    r = _cli("search", "--run", tiny_run / "run", "--config", tiny_run / "space.yaml", "--show-space")
    assert r.returncode == 0, r.stderr
    assert "torch (torch_checkpoint)" in r.stdout and "slot structure (optional)" in r.stdout
    assert "onnx_int8_static: per_channel in {True, False}" in r.stdout
    assert not (tiny_run / "run" / "search").exists()  # showing the space runs nothing


@pytest.fixture(scope="module")
def local_search(tiny_run):
    out = tiny_run / "local"
    r = _cli("search", "--run", tiny_run / "run", "--config", tiny_run / "space.yaml", "--out", out)
    assert r.returncode == 0, r.stderr[-3000:]
    return out


def _with_built_variants(out: Path, local_search: Path) -> Path:
    """A fresh search folder holding the local search's built variants: its trials are evaluated and
    driven again (what these tests are about), their technique steps are reused as finished. The
    baselines' reference (measured and driven in the search's own process, before any trial, as the
    local search did) is seeded too: its offline result and drives are read back as cached (~10 s)."""
    import shutil

    shutil.copytree(local_search / "variants", out / "variants")
    for name in json.loads((local_search / "reference.json").read_text()):
        for f in (local_search / "offline" / "variants").glob(f"{name}.*"):  # NAME.json, NAME.pred.npy
            (out / "offline" / "variants").mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, out / "offline" / "variants" / f.name)
        shutil.copytree(local_search / "closed_loop" / name, out / "closed_loop" / name)
    return out


def _front(out: Path) -> list[tuple]:
    doc = json.loads((out / "results.json").read_text())
    by_name = {t["name"]: t for t in doc["trials"]}
    return sorted((by_name[n]["chain"], json.dumps(by_name[n]["params"], sort_keys=True),
                   tuple(round(v, 6) for v in by_name[n]["values"])) for n in doc["front"])


@pytest.mark.slow
def test_local_search_writes_the_front_every_trial_and_a_replay(local_search):
    doc = json.loads((local_search / "results.json").read_text())
    assert doc["schema"] == "pilotopt.search/1" and doc["trials_finished"] == 3
    assert len(doc["trials"]) == 3 and doc["front"]
    for t in doc["trials"]:
        assert t["state"] in ("complete", "fail") and t["chain"]
        if t["state"] == "complete":
            assert t["result"]["fidelity"] in (1, 2, 3)
    driven = [t for t in doc["trials"] if (t["result"] or {}).get("fidelity") == 3]
    assert driven, "no trial was driven with the whole protocol"
    m = driven[0]["result"]["summary"]  # the report's figures for it, beside the search's own score
    assert set(m["cl_conditions"]) == {"default", "dusk"} and m["cl_runs_total"] == 1
    assert driven[0]["result"]["score"] == pytest.approx(
        sum(c["score_mean"] for c in m["cl_conditions"].values()) / 2)
    assert doc["latency_measured_on"]["objective"] == "MMACs per prediction"
    md = (local_search / "search.md").read_text()
    assert "## Pareto front" in md and "## Every trial" in md
    assert (local_search / "front.png").is_file()
    assert doc["reference"]["torch"]["summary"]["cl_runs_total"] == 1


@pytest.mark.slow
def test_per_layer_sensitivity_by_driving_for_the_int8_trial(local_search, tiny_run):
    """Rerun the finished search with one layer of sensitivity: no trial is drawn again, and the
    int8 trial gets a row for the layer kept in float, with its driving score change."""
    doc = json.loads((local_search / "results.json").read_text())
    int8 = [t for t in doc["trials"] if (t["chain"] or "").endswith("onnx_int8_static")
            and (t["result"] or {}).get("fidelity") == 3]
    assert int8, "seed 3 draws an int8 chain among the 3 trials"
    before = (local_search / "computed.log").read_text().split()
    r = _cli("search", "--run", tiny_run / "run", "--config", tiny_run / "space.yaml", "--out", local_search,
             "--sensitivity-layers", "1")
    assert r.returncode == 0, r.stderr[-3000:]
    sens = json.loads((local_search / "sensitivity.json").read_text())
    assert len(sens["layers"]) == 1 and all(row["state"] == "complete" for row in sens["layers"])
    assert all(isinstance(row["score_change"], float) for row in sens["layers"])
    after = (local_search / "computed.log").read_text().split()
    assert after[:len(before)] == before and len(after) == len(before) + 1  # only the float-layer variant
    variant = json.loads((local_search / "variants" / sens["layers"][0]["name"] / "variant.json").read_text())
    assert variant["record"]["float_nodes"] == [sens["layers"][0]["layer"]]
    assert "## Per-layer sensitivity by driving" in (local_search / "search.md").read_text()


@pytest.mark.slow
def test_replay_yaml_rebuilds_the_recommended_variant(local_search, tiny_run, tmp_path):
    doc = json.loads((local_search / "results.json").read_text())
    replay = local_search / "replay.yaml"
    assert doc["recommended"] and replay.is_file()
    spec = yaml.safe_load(replay.read_text())
    name = doc["recommended"]
    assert list(spec["variants"]) == [name]
    head = replay.read_text().splitlines()[1]
    args = head.split("replay: pilotopt ", 1)[1].replace("replay.yaml", str(replay)).replace("DIR", str(tmp_path / "re"))
    r = _cli(*args.split())
    assert r.returncode == 0, r.stderr[-3000:]
    again = json.loads((tmp_path / "re" / name / "variant.json").read_text())
    first = json.loads((local_search / "variants" / name / "variant.json").read_text())
    assert again["record"]["chain_key"] == first["record"]["chain_key"]
    assert again["steps"] == first["steps"]


@pytest.mark.slow
def test_a_killed_search_resumes_on_ray_without_computing_a_finished_trial_again_and_gives_the_local_front(
        local_search, tiny_run):
    """Killed after its first trial on the local engine, the search resumes on Ray Tune with two
    trials at once: no finished trial is computed again, and the front is the local search's."""
    pytest.importorskip("ray.tune")
    out = _with_built_variants(tiny_run / "killed", local_search)
    proc = _cli("search", "--run", tiny_run / "run", "--config", tiny_run / "space.yaml", "--out", out, wait=False)
    trials = out / "trials"
    deadline = time.monotonic() + 600
    while proc.poll() is None and time.monotonic() < deadline and not (trials.is_dir() and list(trials.glob("*.json"))):
        time.sleep(0.2)
    assert trials.is_dir() and list(trials.glob("*.json")), "the search never finished a trial"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished_before = {p.stem for p in trials.glob("*.json")}
    assert not (out / "results.json").exists()  # it stopped in the middle
    r = _cli("search", "--run", tiny_run / "run", "--config", tiny_run / "space.yaml", "--out", out,
             "--executor", "ray", "--workers", "2")
    assert r.returncode == 0, r.stderr[-3000:]
    computed = (out / "computed.log").read_text().split()
    for name in finished_before:
        assert computed.count(name) == 1, f"{name} was computed again after the kill"
    doc = json.loads((out / "results.json").read_text())
    assert doc["trials_finished"] == 3 and doc["latency_measured_on"]["trials_at_once"] == 2
    assert _front(out) == _front(local_search)
    assert (out / "ray_results" / "tune").is_dir()  # Tune's experiment lives in the search folder


def test_the_front_holds_only_driven_trials():
    """A screened-out candidate (score 0, never driven) is not on the front even when it is the
    smallest and fastest."""
    from pilotopt.search.results import front

    from pilotopt.records import SearchTrial

    def t(name, values, fidelity, screen=None):
        return {"name": name, "state": "complete", "values": values,
                "doc": SearchTrial(name=name, state="complete", fidelity=fidelity, screen=screen)}

    trials = [t("driven", [80.0, 0.2, 1.6], 3), t("screened", [0.0, 0.1, 0.2], 1, "MSE 9x its baseline's"),
              t("slow", [70.0, 0.3, 1.7], 3)]
    assert [x["name"] for x in front(trials, ["maximize", "minimize", "minimize"])] == ["driven"]
    # stopped after one drive (fidelity 2) below the screen's floor: not on the front either, even
    # when every driven trial is off it (a 30-trial demo search reported such a score-0 front)
    first = t("first drive only", [0.0, 0.1, 0.2], 2, "first drive scored 0.0 < screen.first_drive_min_score 50")
    assert [x["name"] for x in front([first, *trials], ["maximize", "minimize", "minimize"])] == ["driven"]
    assert front([first], ["maximize", "minimize", "minimize"]) == []


def test_a_trial_without_a_structure_step_runs_its_baselines_macs():
    """A trial's row is aggregated alone; weight pruning and quantization keep the dense MACs, while a
    channel-pruned or distilled trial keeps its own count."""
    from pilotopt.records import VariantSummary
    from pilotopt.search.trial import trial_of

    def summary(macs):
        return VariantSummary(key="torch/x", name="x", macs=macs)

    assert trial_of("x", summary(None), summary(28_200_000)).mmacs == pytest.approx(28.2)
    assert trial_of("x", summary(7_600_000), summary(28_200_000)).mmacs == pytest.approx(7.6)
    assert trial_of("x", summary(None), None).mmacs is None


def test_on_a_target_a_trial_is_judged_by_the_devices_brain_step_and_one_it_cannot_run_is_screened_out():
    from types import SimpleNamespace

    from pilotopt.pipeline.config import load_config
    from pilotopt.records import OfflineRow, SearchTrial, VariantSummary
    from pilotopt.search.config import load_search_config
    from pilotopt.search.trial import objective_values, screen

    search = load_search_config(None, {"latency": "measured"})
    summary = VariantSummary(key="torch/t", name="t", latency_p50_ms=0.4, size_mb=1.0, target_status="ok",
                             target_brain_step_p50_ms=44.0)
    trial = SearchTrial(name="t", state="complete", fidelity=3, score=80.0, summary=summary)
    here = SimpleNamespace(cfg=load_config(None, {}), search=search)
    there = SimpleNamespace(cfg=load_config(None, {"target": {"device": "ssh://pi@car"}}), search=search)
    latency = search.objectives.index("latency")
    assert objective_values(here, trial)[latency] == 0.4 and objective_values(there, trial)[latency] == 44.0
    row = {"name": "t", "status": "ok", "error": {"n": 8, "mse_v": 0.01, "mse_w": 0.01, "mse_mean": 0.01},
           "latency_ms": {"model": {"n": 5, "mean_ms": 0.4, "std_ms": 0, "p50_ms": 0.4, "p90_ms": 0.4, "p99_ms": 0.4,
                                    "min_ms": 0.4, "max_ms": 0.4}},
           "on_target": {"target": "ssh://pi@car", "status": "not runnable",
                         "reason": "not runnable on ssh://pi@car: runtime 'openvino' is not installed on the device"}}
    base = VariantSummary(key="torch/b", name="b", mse_mean=0.01)
    assert screen(here, OfflineRow.from_json(row), base) is None
    assert "runtime 'openvino' is not installed" in screen(there, OfflineRow.from_json(row), base)


def test_score_and_autonomy_floors_name_what_a_driven_trial_misses():
    from pilotopt.records import SearchTrial, VariantSummary
    from pilotopt.search.config import ConstraintsSection
    from pilotopt.search.results import short_of

    driven = SearchTrial(name="t", state="complete", fidelity=3, score=71.5,
                         summary=VariantSummary(key="torch/t", name="t", cl_autonomy_mean=88.0))
    assert short_of(driven, ConstraintsSection()) is None
    assert short_of(driven, ConstraintsSection(min_score=80)) == "score 71.5 < constraints.min_score 80"
    assert short_of(driven, ConstraintsSection(min_score=70, min_autonomy=90)) == \
        "autonomy 88.0 % < constraints.min_autonomy 90"
    screened = driven.model_copy(update={"fidelity": 1, "score": 0.0})
    assert short_of(screened, ConstraintsSection(min_score=80)) is None  # screened


@pytest.mark.slow
def test_a_score_floor_keeps_driven_trials_off_the_front_without_recomputing(local_search, tiny_run, tmp_path):
    import shutil

    out = tmp_path / "floored"
    shutil.copytree(local_search, out)
    computed = (out / "computed.log").read_text()
    r = _cli("search", "--run", tiny_run / "run", "--config", tiny_run / "space.yaml", "--out", out,
             "--min-score", "100")
    assert r.returncode == 0, r.stderr[-3000:]
    doc = json.loads((out / "results.json").read_text())
    driven = [t for t in doc["trials"] if ((t["result"] or {}).get("fidelity") or 0) >= 2]
    assert driven
    below = [t for t in driven if t["result"]["score"] < 100]
    assert below and all("< constraints.min_score 100" in t["short_of"] for t in below)
    assert not set(doc["front"]) & {t["name"] for t in below}
    assert "constraints.min_score 100" in (out / "search.md").read_text()
    assert (out / "computed.log").read_text() == computed  # judged again, nothing computed again


def test_a_failed_trial_steers_the_sampler_away_from_the_region_that_failed():
    """A trial that made no scored variant is told to the sampler as a point dominated in every
    objective: TPE then draws the failing region less often than when it is told a failure, which
    it ignores (a 30-trial demo search drew one failing pruning level 19 times in a row). The
    trial itself stays failed: never on the front."""
    optuna = pytest.importorskip("optuna")
    from types import SimpleNamespace

    from pilotopt.pipeline.config import load_config
    from pilotopt.records import SearchTrial, VariantSummary
    from pilotopt.search.config import load_search_config
    from pilotopt.search.results import front
    from pilotopt.search.trial import sampler_values

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    search = load_search_config(None, {"latency": "measured"})
    ctx = SimpleNamespace(cfg=load_config(None, {}), search=search)

    def trial_at(amount: float) -> SearchTrial:  # more pruning: faster and smaller, until it breaks
        if amount > 0.6:
            return SearchTrial(name="t", state="failed", reason="step 2/3 torch_prune_global failed: MSE 30x")
        summary = VariantSummary(key="torch/t", name="t", latency_p50_ms=1.0 - amount, size_mb=1.0 - amount)
        return SearchTrial(name="t", state="complete", fidelity=3, score=85.0 - 5 * amount, summary=summary)

    def failing_draws(tell_failures_as_failures: bool) -> int:
        study = optuna.create_study(directions=search.directions,
                                    sampler=optuna.samplers.TPESampler(seed=3, n_startup_trials=8))
        drawn = 0
        for i in range(40):
            trial = study.ask()
            doc = trial_at(trial.suggest_float("amount", 0.0, 0.9))
            values, own = sampler_values(ctx, doc)
            drawn += i >= 8 and not own
            if tell_failures_as_failures and not own:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
            else:
                study.tell(trial, values)
        return drawn

    assert failing_draws(False) < failing_draws(True) / 2
    failed = trial_at(0.8)
    values, own = sampler_values(ctx, failed)
    assert not own and values[search.objectives.index("score")] == 0.0
    assert all(v >= 1e9 for o, v in zip(search.objectives, values) if o != "score")
    row = {"name": "t", "state": "failed", "values": values, "doc": failed}
    assert front([row], search.directions) == []


def test_the_search_holds_a_trial_to_the_baseline_the_runs_decision_does():
    """The condition gate of a search trial measures against the best-driving baseline in every
    cell, as the run's rule does, not against each cell's best baseline: the demo's distilled
    student passed the run's gate on dusk (torch 60.8) and failed the search's (keras 79.1, a
    baseline that drives worse everywhere else), leaving the search's front empty."""
    from types import SimpleNamespace

    from pilotopt.decide import recommend
    from pilotopt.pipeline.config import load_config
    from pilotopt.records import ScoreCell, SearchTrial, VariantSummary
    from pilotopt.search.results import off_the_gate

    def summary(key, default, dusk, framework, name):
        cells = {f"{cond}|simple|anticlockwise": ScoreCell(score_mean=s, score_lo=s - 0.5, score_hi=s + 0.5, n=3,
                                                           clean=3, condition=cond, circuit="simple",
                                                           direction="anticlockwise")
                 for cond, s in (("default", default), ("dusk", dusk))}
        return VariantSummary(key=key, name=name, framework=framework, status="ok", mse_mean=0.01,
                              latency_p50_ms=1.0, size_mb=1.0, cl_score_mean=default, cl_score_lo=default - 0.5,
                              cl_score_hi=default + 0.5, cl_runs_total=3, cl_runs_completed=3, cl_all_completed=True,
                              cl_cells=cells)

    torch = summary("torch/torch", 82.4, 60.8, "torch", "torch")
    keras = summary("tf/keras", 57.3, 79.1, "tf", "keras")
    ref = {"torch": SearchTrial(name="torch", state="complete", fidelity=3, summary=torch),
           "keras": SearchTrial(name="keras", state="complete", fidelity=3, summary=keras)}
    ctx = SimpleNamespace(cfg=load_config(None, {}))

    def trial(dusk):
        s = summary("torch/s-1", 93.2, dusk, "torch", "s-1")
        return {"doc": SearchTrial(name="s-1", state="complete", fidelity=3, score=93.2, summary=s)}

    assert off_the_gate(ctx, trial(68.3), ref) is None  # above torch's dusk, below keras's: passes, as in the run
    assert "dusk" in off_the_gate(ctx, trial(50.0), ref)  # below torch's own dusk interval minus 5: fails
    # the run's rule over the same rows agrees
    rows = [torch, keras, trial(68.3)["doc"].summary]
    assert recommend(rows, {"mse_tolerance": 0.5})["recommended"] == "torch/s-1"
