"""`torch_prune_quant`: the chain torch_prune_local > torch_qat. Per-layer L1 pruning (conv 30 %,
dense 50 %) with its fine-tune, then PT2E quantization-aware training, which keeps the input's zero
weights at zero after every optimizer step -> int8 `.pt2` (`torch_export` runtime). Symmetric
weight quantization maps 0 to 0: the record shows the zeros survived in the int8 weights per layer.
A key given for `torch_prune_quant` (e.g. epochs) goes to every step that has it."""

from __future__ import annotations

from pilotopt.techniques import torch_prune_local, torch_qat  # noqa: F401 - registers the steps
from pilotopt.techniques._chain import register_chain

register_chain("torch_prune_quant", ("torch_prune_local", "torch_qat"), order=160,
               description="L1 pruning (conv 30 %, dense 50 %) > zero-preserving PT2E QAT, int8 .pt2")
