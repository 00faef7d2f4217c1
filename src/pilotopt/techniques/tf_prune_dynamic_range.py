"""`tf_prune_dynamic_range`: the chain tf_prune > tflite_dynamic_range. The same TF-MOT magnitude
pruning as `tf_prune` (polynomial 0.5 -> 0.8, fine-tune on the TRAINING split, strip_pruning), then
dynamic-range quantization at conversion (weights stored int8: zeros stay exact zeros under
symmetric int8 quantization; activations and input/output float32). Run beside `tf_prune` with the
same settings, the pruning fine-tune runs once (chain prefixes are cached)."""

from __future__ import annotations

from pilotopt.techniques import tf_prune, tflite_dynamic_range  # noqa: F401 - registers the steps
from pilotopt.techniques._chain import register_chain

register_chain("tf_prune_dynamic_range", ("tf_prune", "tflite_dynamic_range"), order=41,
               description="TF-MOT pruning (default 0.5 -> 0.8), fine-tune, strip > LiteRT dynamic range (int8 weights)")
