"""PyTorch modules that move between a contract's tensors and pilotopt's own, so a pilotopt model
(the distillation student) can be trained and deployed inside another toolkit's contract:
`ToRawPixels` undoes the contract's scaling, channel order and layout (back to NHWC RGB 0..255),
`ToNativeOutputs` maps pilotopt-normalized (v, w) into the contract's output space."""

from __future__ import annotations

import numpy as np


def adapters(contract):
    """(ToRawPixels, ToNativeOutputs) modules for `contract` (identity for pilotopt's own)."""
    import torch
    from torch import nn

    a, b = contract.outputs._affine()
    order = [contract.outputs.v_index, contract.outputs.w_index]

    class ToRawPixels(nn.Module):
        def __init__(self):
            super().__init__()
            std = torch.tensor(np.asarray(contract.std, np.float32))
            mean = torch.tensor(np.asarray(contract.mean, np.float32))
            self.register_buffer("std", std)
            self.register_buffer("mean", mean)
            self.scale = float(contract.pixel_scale)
            self.nchw = contract.layout == "nchw"
            self.bgr = contract.channels == "bgr"

        def forward(self, x):
            if self.nchw:
                x = x.movedim(-3, -1)
            x = (x * self.std + self.mean) / self.scale
            return x.flip(-1) if self.bgr else x

    class ToNativeOutputs(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("a", torch.tensor(a, dtype=torch.float32))
            self.register_buffer("b", torch.tensor(b, dtype=torch.float32))
            self.register_buffer("inverse", torch.tensor(np.argsort(order), dtype=torch.long))

        def forward(self, y):
            return ((y - self.b) / self.a)[..., self.inverse]

    return ToRawPixels(), ToNativeOutputs()
