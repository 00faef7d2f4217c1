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
