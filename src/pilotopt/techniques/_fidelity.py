"""Whether a technique's result still computes its input model's function.

A max-|diff| tolerance cannot tell a fine-tune that moved the outputs (expected) from one that
broke them (a channel-pruned model answering (-0.10, -0.03) to every frame): both differ. What
tells them apart is the task: an answer that no longer depends on the frame where its input
model's does, or an error on labelled frames several times its input model's."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

OUTPUTS = ("v", "w")
CONSTANT_SHARE = 0.01  # an output whose spread is below 1 % of the input model's has turned constant
MIN_SPREAD = 1e-3  # below this the input model's own output is too flat to judge
LABEL_SHARE = 0.1  # ... and below this share of the labels' spread, when there are labels
MAX_MSE_RATIO = 3.0  # default: a result whose MSE exceeds this multiple of its input model's has lost its function
MSE_FLOOR = 1e-4  # absolute slack, so a near-perfect input model does not make noise a failure


@dataclass(frozen=True)
class Fidelity:
    reason: str | None  # why the result lost its function (None: it kept it)
    record: dict = field(default_factory=dict)  # what was measured, for variant.json


def function_lost(got: np.ndarray, reference: np.ndarray, labels: np.ndarray | None,
                  max_mse_ratio: float) -> Fidelity:
    """Judge `got` (the result's normalized (v, w) per frame) against `reference` (its input
    model's on the same frames) and, when given, the frames' `labels`."""
    got = np.asarray(got, np.float64).reshape(len(got), -1)
    reference = np.asarray(reference, np.float64).reshape(len(reference), -1)
    record: dict = {}
    reasons = []
    informative = True  # whether the input model's answer carries anything of the task to keep
    if labels is not None:
        labels = np.asarray(labels, np.float64).reshape(len(labels), -1)
        # no better than answering the labels' mean (an untrained model): no function to lose
        informative = float(np.mean((reference - labels) ** 2)) < float(np.mean(labels.var(axis=0)))
    if len(got) > 1 and informative:
        spread, ref_spread = got.std(axis=0), reference.std(axis=0)
        record["check_output_std"] = [round(float(x), 6) for x in spread]
        # judged only where the input model's own output varies: beyond MIN_SPREAD, and with labels
        # beyond LABEL_SHARE of theirs (a barely trained model's near-constant output proves nothing)
        floor = np.full(len(spread), MIN_SPREAD) if labels is None else np.maximum(MIN_SPREAD, LABEL_SHARE * labels.std(axis=0))
        names = [OUTPUTS[i] if i < len(OUTPUTS) else f"output {i}" for i in range(len(spread))]
        judged = [(n, s, r) for n, s, r, f in zip(names, spread, ref_spread, floor) if r > f]
        # the answer no longer depends on the frame: every output that varies with the input model is
        # flat here, and none varies (one flat output alone is the MSE limit's to judge)
        if judged and all(s <= CONSTANT_SHARE * r for _, s, r in judged) and \
                all(s <= CONSTANT_SHARE * max(r, f) for s, r, f in zip(spread, ref_spread, floor)):
            reasons.append("constant output " + ", ".join(f"{n} (std {s:.2g}, the input model's {r:.2g})"
                                                           for n, s, r in judged))
    if labels is not None:
        mse = float(np.mean((got - labels) ** 2))
        ref_mse = float(np.mean((reference - labels) ** 2))
        record.update({"check_mse": mse, "check_parent_mse": ref_mse, "check_max_mse_ratio": float(max_mse_ratio)})
        if not np.isfinite(mse) or mse > max_mse_ratio * ref_mse + MSE_FLOOR:
            reasons.append(f"MSE {mse:.4g} is {mse / max(ref_mse, 1e-12):.1f}x the input model's {ref_mse:.4g} "
                           f"(limit {max_mse_ratio:g}x, setting max_mse_ratio)")
    return Fidelity("; ".join(reasons) or None, record)
