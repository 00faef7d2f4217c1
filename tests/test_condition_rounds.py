"""When the condition gate excludes every shortlisted candidate, the run drives the next candidates
that were never driven under the conditions, instead of recommending one that was never tested."""

from __future__ import annotations

from test_report import _condition_drives, offline_doc, offline_row

from pilotopt.pipeline.config import load_config
from pilotopt.pipeline.run import untested_candidates


def test_the_next_candidates_are_driven_when_the_shortlist_fails_a_condition():
    cfg = load_config(overrides={"closed_loop": {"conditions": ["dusk"], "shortlist": 1}})
    doc = offline_doc([offline_row("keras", runtime="keras", baseline=None, mb=19.2, mse=0.0070, p50=1.0),
                       offline_row("tflite_int8", mb=1.6, mse=0.0070, p50=0.10),
                       offline_row("tflite_fp32", mb=6.4, mse=0.0070, p50=0.40),
                       offline_row("tflite_float16", mb=3.2, mse=0.0070, p50=0.30)])
    planned = [{"name": r["name"]} for r in doc["variants"]]
    screen = [d for v in ("keras", "tflite_int8", "tflite_fp32", "tflite_float16")
              for d in _condition_drives(v, "default", True, reps=1)]
    deep = []
    for v in ("keras", "tflite_int8"):  # the shortlist: the baseline and the fastest, which fails dusk
        deep += _condition_drives(v, "default", True) + _condition_drives(v, "dusk", v == "keras")
    drives = [d for d in screen if d["variant"] not in ("keras", "tflite_int8")] + deep
    # fastest first: float16 (0.30 ms) before fp32 (0.40 ms), one per round (shortlist: 1)
    assert untested_candidates(cfg, doc, drives, planned, {"keras", "tflite_int8"}) == ["tflite_float16"]
    drives += _condition_drives("tflite_float16", "dusk", True) + _condition_drives("tflite_float16", "default", True)
    # float16 now drives dusk as well as the baseline and is the recommendation: nothing more to drive
    assert untested_candidates(cfg, doc, drives, planned, {"keras", "tflite_int8", "tflite_float16"}) == []


def test_a_search_trial_that_fails_a_condition_the_baseline_passes_is_off_the_front():
    from types import SimpleNamespace

    from test_report import rows_for

    from pilotopt.search.results import off_the_gate

    doc = offline_doc([offline_row("keras", runtime="keras", baseline=None, mb=19.2, mse=0.0070, p50=1.0),
                       offline_row("trial_7", mb=1.6, mse=0.0070, p50=0.10),
                       offline_row("trial_8", mb=1.6, mse=0.0070, p50=0.12)])
    drives = []
    for v in ("keras", "trial_7", "trial_8"):
        drives += _condition_drives(v, "default", True) + _condition_drives(v, "dusk", v != "trial_7")
    from pilotopt.records import SearchTrial

    rows = {r.name: r for r in rows_for(doc, drives)}

    def trial(name, fidelity=3):
        return {"doc": SearchTrial(name=name, state="complete", fidelity=fidelity, summary=rows[name])}

    ctx = SimpleNamespace(cfg=load_config())
    ref = {"tf": trial("keras")["doc"]}
    off = off_the_gate(ctx, trial("trial_7"), ref)
    assert off == "condition gate: dusk: 0/3 clean laps, baseline 3/3"
    assert off_the_gate(ctx, trial("trial_8"), ref) is None
    assert off_the_gate(ctx, trial("trial_7", fidelity=2), ref) is None  # not driven under it yet
    relaxed = SimpleNamespace(cfg=load_config(overrides={"report": {"relax_conditions": ["dusk"]}}))
    assert off_the_gate(relaxed, trial("trial_7"), ref) is None


def test_the_runs_own_default_and_slow_drives_seed_the_breaking_point_search():
    from pilotopt.pipeline.breaking import known_verdicts
    from pilotopt.records import drives_of

    drives = (_condition_drives("torch", "default", True) + _condition_drives("torch", "slow:30", True)
              + _condition_drives("torch", "dusk", False) + _condition_drives("onnx", "slow:30", False)
              + _condition_drives("onnx", "default", True, reps=1))
    for d in drives:
        d["framework"] = "torch"
    chosen = [{"key": "torch/torch", "name": "torch", "framework": "torch"},
              {"key": "torch/onnx", "name": "onnx", "framework": "torch"}]
    known = known_verdicts(drives_of(drives), chosen, protocol_size=3)
    assert sorted(known["torch/torch"]) == [1.0, 30.0] and known["torch/torch"][30.0].clean  # dusk is no scale
    assert known["torch/onnx"] == {30.0: known["torch/onnx"][30.0]} and not known["torch/onnx"][30.0].clean
    # (onnx's one default drive is not the whole protocol: its 1x is probed again)
