"""The breaking-point search finds where driving stops being clean, to its stated resolution."""

from __future__ import annotations

import pytest

from pilotopt.breaking_point import find_breaking_point
from pilotopt.records import BreakingProbe


@pytest.mark.parametrize("threshold", [1.0, 3.7, 37.0, 180.0, 999.0])
def test_a_known_breaking_point_is_found_within_the_resolution(threshold):
    calls = []

    def probe(scale):  # a stub brain: clean while its latency x scale stays at or below the threshold
        calls.append(scale)
        return scale <= threshold

    bp = find_breaking_point(probe, cap=1000.0, resolution=0.1)
    assert bp.scale <= threshold < bp.failed_at <= bp.scale * 1.1 + 1e-9
    assert not bp.capped and len(calls) == len(bp.probes) and len(calls) <= 20
    assert [p.scale for p in bp.probes] == calls and all(p.clean == (p.scale <= threshold) for p in bp.probes)
    assert bp.text().startswith("up to")


def test_the_cap_and_a_variant_that_never_drives():
    assert find_breaking_point(lambda s: True, cap=100.0).to_json()["capped"] is True
    assert find_breaking_point(lambda s: True, cap=100.0).text() == "over 100x (the cap)"
    never = find_breaking_point(lambda s: False)
    assert never.scale is None and never.failed_at == 1.0 and never.text() == "not even 1x"


def test_on_real_drives_the_found_scale_drives_clean_and_the_failing_one_does_not():
    """The expert brain with a 20 ms step (drawn as a measured distribution): clean at 1x, off the road once its commands come
    seconds late. The search's answer is checked by driving both ends again."""
    from pilotopt.sim.brains import make_brain
    from pilotopt.sim.closed_loop import DriveConfig, drive

    def clean(scale):
        r = drive(make_brain("expert"), DriveConfig(circuit="simple", mode="realtime", latency_samples=[0.02],
                                                    latency_scale=scale, interventions=False, warmup_steps=0))
        return BreakingProbe(scale=scale, clean=r.metrics.lap_completed, score_mean=r.metrics.driving_score)

    bp = find_breaking_point(clean, cap=256.0, resolution=0.25)
    assert bp.scale is not None and not bp.capped, bp
    assert bp.failed_at / bp.scale <= 1.25 + 1e-9
    assert clean(bp.scale).clean and not clean(bp.failed_at).clean


def test_known_verdicts_seed_the_search_and_are_not_probed_again():
    calls = []

    def probe(scale):
        calls.append(scale)
        return scale <= 50.0

    # the run already drove 1x (default) and 30x (slow:30) cleanly: the search doubles from 30
    bp = find_breaking_point(probe, resolution=0.1, known={1.0: True, 30.0: BreakingProbe(scale=30.0, clean=True,
                                                                                         score_mean=80.0)})
    assert bp.scale <= 50.0 < bp.failed_at <= bp.scale * 1.1 + 1e-9
    assert calls[0] == 60.0 and 1.0 not in calls and 30.0 not in calls
    assert [p.source for p in bp.probes[:2]] == ["run", "run"] and bp.probes[1].score_mean == 80.0
    # a known failure bounds the search from above: bisection only
    calls.clear()
    bp = find_breaking_point(probe, resolution=0.1, known={1.0: True, 64.0: False})
    assert bp.scale <= 50.0 < bp.failed_at and all(1.0 < c < 64.0 for c in calls)
    # known not clean at the start: nothing to probe
    calls.clear()
    assert find_breaking_point(probe, known={1.0: False}).scale is None and not calls
