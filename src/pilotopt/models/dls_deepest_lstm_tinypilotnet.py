"""DeepLearningStudio's single-frame PyTorch DeepestLSTMTinyPilotNet, with its module names
(`cn_1..cn_3`, `dropout_1`, `clstm_n.cell_list.{0,1,2}.conv`, `fc_1..fc_3`) so its state dicts
(`DLT_net_model_<seed>.ckpt`) load as they are. Three 8-filter 3x3 stride-2 convs, then three
ConvLSTM layers (one conv over concat(input, hidden) per cell, 5x5 'same', gates i, f, o, g) run
over a sequence of one frame, flatten 8 x 11 x 5 = 440, dense 50/10/2. Input NCHW (3, 100, 50)
RGB in [0, 1], as DLS trains it (`--img_shape 100,50,3`)."""

from __future__ import annotations

from pilotopt.models.arch import register_arch


def _module():
    import torch
    from torch import nn

    class Cell(nn.Module):
        def __init__(self, channels: int, hidden: int, kernel: int):
            super().__init__()
            self.hidden = hidden
            self.conv = nn.Conv2d(channels + hidden, 4 * hidden, kernel, padding=kernel // 2)

        def forward(self, x, h, c):
            i, f, o, g = torch.split(self.conv(torch.cat([x, h], dim=1)), self.hidden, dim=1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            return torch.sigmoid(o) * torch.tanh(c), c

    class ConvLSTM(nn.Module):
        def __init__(self, channels: int, hidden: int, kernel: int, layers: int):
            super().__init__()
            self.cell_list = nn.ModuleList(Cell(channels if i == 0 else hidden, hidden, kernel) for i in range(layers))

        def forward(self, seq):  # (B, T, C, H, W) -> last layer's last hidden state
            for cell in self.cell_list:
                b, _, _, hh, ww = seq.shape
                h = seq.new_zeros(b, cell.hidden, hh, ww)
                c = torch.zeros_like(h)
                outs = []
                for t in range(seq.shape[1]):
                    h, c = cell(seq[:, t], h, c)
                    outs.append(h)
                seq = torch.stack(outs, dim=1)
            return h

    class DLSDeepestLSTMTinyPilotNet(nn.Module):
        def __init__(self, channels: int = 3, outputs: int = 2, height: int = 100, width: int = 50):
            super().__init__()
            self.cn_1 = nn.Conv2d(channels, 8, 3, stride=2)
            self.cn_2 = nn.Conv2d(8, 8, 3, stride=2)
            self.cn_3 = nn.Conv2d(8, 8, 3, stride=2)
            self.dropout_1 = nn.Dropout(0.2)
            self.clstm_n = ConvLSTM(8, 8, 5, 3)
            h, w = height, width
            for _ in range(3):
                h, w = (h - 3) // 2 + 1, (w - 3) // 2 + 1
            self.fc_1 = nn.Linear(8 * h * w, 50)
            self.fc_2 = nn.Linear(50, 10)
            self.fc_3 = nn.Linear(10, outputs)
            self.relu_1, self.relu_2, self.relu_3 = nn.ReLU(), nn.ReLU(), nn.ReLU()  # DLS's own modules
            self.relu_fc_1, self.relu_fc_2 = nn.ReLU(), nn.ReLU()

        def forward(self, img):
            out = self.relu_3(self.cn_3(self.relu_2(self.cn_2(self.relu_1(self.cn_1(img))))))
            out = self.clstm_n(self.dropout_1(out).unsqueeze(1))
            out = out.reshape(out.size(0), -1)
            return self.fc_3(self.relu_fc_2(self.fc_2(self.relu_fc_1(self.fc_1(out)))))

    return DLSDeepestLSTMTinyPilotNet


@register_arch("dls_deepest_lstm_tinypilotnet", declared_shape=(3, 100, 50), contract="dls-torch",
               description="DeepLearningStudio PyTorch DeepestLSTMTinyPilotNet, single frame (NCHW 100x50 /255)")
def dls_deepest_lstm_tinypilotnet(channels: int = 3, outputs: int = 2, height: int = 100, width: int = 50):
    return _module()(channels, outputs, height, width)
