"""A small PilotNet-shaped student for knowledge distillation.

Same topology as PilotNet (five convs with the same kernels and strides, so the same spatial
sizes down to 1x18, then three dense layers), but thin: conv 12/16/24 (5x5, stride 2),
conv 32/32 (3x3), dense 100/20, output 2. The first two convs run at the largest resolutions and
dominate the cost, so they are the ones made narrowest.

91,306 parameters (17.5x fewer than pilotnet) and 7,588,848 MACs per frame (3.7x fewer).
"""

from __future__ import annotations

from pilotopt.models._convnet import Conv, FrameConvNetSpec
from pilotopt.models._registry import register_model


@register_model("pilotnet_student")
class PilotNetStudent(FrameConvNetSpec):
    description = "thin PilotNet for distillation: conv 12/16/24/32/32, dense 100/20/2 (~91 k params)"
    convs = (
        Conv(12, 5, 2),
        Conv(16, 5, 2),
        Conv(24, 5, 2),
        Conv(32, 3, 1),
        Conv(32, 3, 1),
    )
    dense = (100, 20)
