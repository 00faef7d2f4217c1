"""A student built for batch-1 latency on a CPU: a patch stem instead of PilotNet's overlapping
first convolution.

PilotNet's first layer (5x5, stride 2, on the full 66x200 image) reads every pixel about six times
(its im2col matrix is 5.7x the image) and, at batch 1 with only 3 input channels, it is the
slowest layer in every runtime measured here, whatever the channel count (pilotnet_student keeps
it and spends ~40 % of its time there). A non-overlapping 4x4, stride-4 stem (as in ConvNeXt and
ViT) reads each pixel once and leaves a 16x50 map, so the later 3x3 convs work on small maps:

    66x200x3 -> conv 16 (4x4/4) -> 16x50x16 -> conv 24 (3x3/2) -> 7x24x24 -> conv 32 (3x3/2)
    -> 3x11x32 -> conv 48 (3x3) -> 1x9x48 -> dense 50/10 -> 2

1,569,640 MACs per frame (18x fewer than pilotnet) and 47,262 parameters. It is meant to be
trained by distillation (`torch_distill: {student: pilotnet_nano}`).
"""

from __future__ import annotations

from pilotopt.models._convnet import Conv, FrameConvNetSpec
from pilotopt.models._registry import register_model


@register_model("pilotnet_nano")
class PilotNetNano(FrameConvNetSpec):
    description = "student with a 4x4/4 patch stem: conv 16/24/32/48, dense 50/10/2 (~47 k params, 1.6 M MACs)"
    convs = (
        Conv(16, 4, 4),
        Conv(24, 3, 2),
        Conv(32, 3, 2),
        Conv(48, 3, 1),
    )
    dense = (50, 10)
