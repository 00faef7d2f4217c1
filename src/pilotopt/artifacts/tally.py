"""Counting parameters and non-zero parameters the same way for every kind.

"Parameters" are weight tensors: floating point tensors and quantized integer weights; index or
shape tensors (int64, or integer tensors without quantization) and scalars (scales, zero points)
are left out. A quantized weight counts as zero when it equals its zero point."""

from __future__ import annotations

import numpy as np


class Tally:
    def __init__(self) -> None:
        self.params = 0
        self.nonzero = 0
        self.tensors = 0

    def add(self, arr, zero_point=None, axis: int | None = None) -> None:
        a = np.asarray(arr)
        if a.size <= 1:
            return  # scalars: scales, zero points, counters
        if zero_point is None and a.dtype.kind in "iub" and a.dtype not in (np.int8, np.uint8):
            return  # shapes, indices, masks (integer weights come with a zero point)
        self.params += int(a.size)
        if zero_point is None:
            self.nonzero += int(np.count_nonzero(a))
        else:
            zp = np.asarray(zero_point)
            if zp.size > 1 and axis is not None and zp.size == a.shape[axis]:
                shape = [1] * a.ndim
                shape[axis] = zp.size
                zp = zp.reshape(shape)
            elif zp.size > 1:
                zp = zp.reshape(-1)[0]
            self.nonzero += int(np.count_nonzero(a != zp))
        self.tensors += 1

    def result(self, source: str) -> dict | None:
        if not self.tensors:
            return None
        return {"params": self.params, "nonzero_params": self.nonzero, "params_source": source}


def _torch_tensor_to_numpy(t):
    import torch

    if getattr(t, "is_quantized", False):
        return t.dequantize().numpy()
    if t.dtype in (torch.bfloat16, torch.float16):
        t = t.float()
    return t.detach().cpu().numpy()


def tally_torch_state(state, tally: Tally) -> Tally:
    import torch

    for name, value in state.items():
        if isinstance(value, torch.Tensor):
            if str(name).endswith("num_batches_tracked"):
                continue
            tally.add(_torch_tensor_to_numpy(value))
        elif isinstance(value, (tuple, list)):
            tally_torch_state({f"{name}.{k}": v for k, v in enumerate(value)}, tally)
        elif isinstance(value, dict):
            tally_torch_state(value, tally)
    return tally


def params_from_record(record: dict | None) -> dict | None:
    """Counts the producer wrote into variant.json's record, if any."""
    record = record or {}
    params = next((record[k] for k in ("params", "num_params", "parameters") if isinstance(record.get(k), int)), None)
    if params is None:
        return None
    nonzero = next((record[k] for k in ("nonzero_params", "non_zero_params") if isinstance(record.get(k), int)), None)
    return {"params": params, "nonzero_params": nonzero, "params_source": "variant record"}
