"""The decision, beside the records it reads: variant summaries from offline rows and drives
(`summary`), the rule that picks the variant to deploy with its gates and ranking (`rule`),
Pareto fronts (`pareto`) and the statistics (`stats`). The pipeline, the search and the report
call these; the report only renders what they decide."""

from pilotopt.decide.rule import Constraints, baseline_keys, condition_gate, driving_reference, recommend
from pilotopt.decide.summary import summarize

__all__ = ["Constraints", "baseline_keys", "condition_gate", "driving_reference", "recommend", "summarize"]
