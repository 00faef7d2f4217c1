"""NVIDIA's 2016 PilotNet (Bojarski et al., "End to End Learning for Self-Driving Cars") and the
study's TensorFlow variant with 'same' padding."""

from __future__ import annotations

from pilotopt.models._convnet import Conv, FrameConvNetSpec
from pilotopt.models._registry import register_model


def pilotnet_convs(padding: str) -> tuple[Conv, ...]:
    return (
        Conv(24, 5, 2, padding),
        Conv(36, 5, 2, padding),
        Conv(48, 5, 2, padding),
        Conv(64, 3, 1, padding),
        Conv(64, 3, 1, padding),
    )


@register_model("pilotnet")
class PilotNet(FrameConvNetSpec):
    """66x200x3 -> conv 24/36/48 (5x5/2) -> conv 64/64 (3x3) -> 1x18x64 -> dense 1164/100/50/10 -> 2.
    1,595,522 parameters, 28,218,480 MACs per frame."""

    description = "NVIDIA PilotNet (2016): 5 valid convs, dense 1164/100/50/10/2, ~1.6 M params"
    convs = pilotnet_convs("valid")
    dense = (1164, 100, 50, 10)


@register_model("pilotnet_same")
class PilotNetSame(FrameConvNetSpec):
    """PilotNet with padding='same' everywhere: the last conv map stays 9x25x64, so the first
    dense layer alone holds 16.76 M of its 17.0 M parameters."""

    description = "PilotNet with 'same' padding (the study's TF variant), ~17 M params"
    convs = pilotnet_convs("same")
    dense = (1164, 100, 50, 10)
