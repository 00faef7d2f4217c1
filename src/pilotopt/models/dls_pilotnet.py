"""DeepLearningStudio's PyTorch PilotNet (Formula1-FollowLine), with its module names, so its state
dicts (`pilot_net_model_<seed>.ckpt`, `..._best_<seed>.pth`) and the ones Behavior Metrics ships
load as they are: an input BatchNorm (`ln_1`, eps 1e-3), convs `cn_1..cn_5` (24/36/48 5x5 stride 2,
64/64 3x3, no padding), flatten 1152, `fc_1..fc_5` (1164/100/50/10/2), ReLU between, linear out.
Input NCHW (3, 66, 200) RGB in [0, 1] (ToTensor), outputs (v, w) normalized by 6.5..24 / -7.1..7.1."""

from __future__ import annotations

from pilotopt.models.arch import register_arch


def _module():
    from torch import nn

    class DLSPilotNet(nn.Module):
        def __init__(self, channels: int = 3, outputs: int = 2):
            super().__init__()
            self.ln_1 = nn.BatchNorm2d(channels, eps=1e-3)
            self.cn_1 = nn.Conv2d(channels, 24, 5, stride=2)
            self.cn_2 = nn.Conv2d(24, 36, 5, stride=2)
            self.cn_3 = nn.Conv2d(36, 48, 5, stride=2)
            self.cn_4 = nn.Conv2d(48, 64, 3, stride=1)
            self.cn_5 = nn.Conv2d(64, 64, 3, stride=1)
            self.flatten = nn.Flatten()
            self.fc_1 = nn.Linear(1 * 18 * 64, 1164)
            self.fc_2 = nn.Linear(1164, 100)
            self.fc_3 = nn.Linear(100, 50)
            self.fc_4 = nn.Linear(50, 10)
            self.fc_5 = nn.Linear(10, outputs)
            for i in range(1, 6):  # one ReLU module per layer, as DLS has them (relu1.., relu_fc1..)
                setattr(self, f"relu{i}", nn.ReLU())
            for i in range(1, 5):
                setattr(self, f"relu_fc{i}", nn.ReLU())

        def forward(self, img):
            out = self.ln_1(img)
            for i in range(1, 6):
                out = getattr(self, f"relu{i}")(getattr(self, f"cn_{i}")(out))
            out = self.flatten(out)
            for i in range(1, 5):
                out = getattr(self, f"relu_fc{i}")(getattr(self, f"fc_{i}")(out))
            return self.fc_5(out)

    return DLSPilotNet


@register_arch("dls_pilotnet", declared_shape=(3, 66, 200), contract="dls-torch",
               description="DeepLearningStudio PyTorch PilotNet (BatchNorm input, NCHW /255)")
def dls_pilotnet(channels: int = 3, outputs: int = 2):
    return _module()(channels, outputs)
