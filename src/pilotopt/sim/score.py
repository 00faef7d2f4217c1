"""The driving score and the autonomy metric, with their formulas versioned (SCORE_VERSION is
written beside every figure, so a later change of formula can never be mixed up with this one).

- autonomy (Bojarski et al. 2016, "End to End Learning for Self-Driving Cars", section 7):
  autonomy = (1 - interventions x 6 s / elapsed s) x 100 %, floored at 0; an intervention is the car
  more than INTERVENTION_DISTANCE (1 m) off the line. 2 interventions in 120 s give 90 %.
- driving score (pilotopt v1), 0-100:
  score = 100 x completion x autonomy/100 x 1 / (1 + mean |deviation| / DEVIATION_SCALE)
  completion is the share of the asked-for laps driven (0-1), deviation the mean distance to the
  line in m, DEVIATION_SCALE 0.5 m (a car 0.5 m off on average keeps half its score).
- Behavior Metrics' "position deviation" is mean(1000^d) over the records, d in m; kept as an extra
  column under that formula's name so the study's tables compare figure for figure."""

from __future__ import annotations

import numpy as np

SCORE_VERSION = "pilotopt.driving_score/1"
INTERVENTION_DISTANCE = 1.0  # m off the line
INTERVENTION_PENALTY_S = 6.0  # s charged per intervention (PilotNet paper)
DEVIATION_SCALE = 0.5  # m

FORMULAS = {
    "version": SCORE_VERSION,
    "autonomy": "(1 - interventions * 6 s / elapsed s) * 100, floored at 0; an intervention is > 1 m off the line",
    "driving_score": "100 * completion * autonomy/100 / (1 + mean deviation m / 0.5 m)",
    "bm_position_deviation": "Behavior Metrics' formula: mean of 1000^d over the records, d in m",
}


def autonomy(interventions: int, elapsed_s: float) -> float:
    """PilotNet's autonomy in percent."""
    if elapsed_s <= 0:
        return 0.0 if interventions else 100.0
    return max(0.0, (1.0 - interventions * INTERVENTION_PENALTY_S / elapsed_s) * 100.0)


def driving_score(completion: float, autonomy_pct: float, mean_deviation_m: float) -> float:
    completion = min(1.0, max(0.0, completion))
    return 100.0 * completion * (autonomy_pct / 100.0) / (1.0 + max(0.0, mean_deviation_m) / DEVIATION_SCALE)


def bm_position_deviation(lateral_m) -> float:
    d = np.abs(np.asarray(lateral_m, dtype=np.float64))
    return float(np.power(1000.0, d).mean()) if len(d) else 0.0


def excursions(lateral_m, distance: float = INTERVENTION_DISTANCE) -> int:
    """Times the car went from within `distance` of the line to beyond it (rising edges)."""
    out = np.abs(np.asarray(lateral_m, dtype=np.float64)) > distance
    if not len(out):
        return 0
    return int(out[0]) + int(np.count_nonzero(out[1:] & ~out[:-1]))
