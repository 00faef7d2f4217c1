"""PyTorch building blocks shared by the specs (imported only when a torch model is built)."""

from __future__ import annotations

import torch
from torch import nn

from pilotopt.models._registry import NORM_OFFSET, NORM_SCALE


class Rescale(nn.Module):
    """Fixed, parameter-free input normalization `x * scale + offset` (Keras' Rescaling):
    raw pixels [0, 255] -> [-1, 1]."""

    def __init__(self, scale: float = NORM_SCALE, offset: float = NORM_OFFSET):
        super().__init__()
        self.scale = float(scale)
        self.offset = float(offset)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale + self.offset

    def extra_repr(self) -> str:
        return f"scale={self.scale:.9g}, offset={self.offset:g}"


class ToNCHW(nn.Module):
    """NHWC -> NCHW, the models' first op (they take NHWC like Keras and convolve in NCHW)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(0, 3, 1, 2)


class ConvLSTMCell(nn.Module):
    """One ConvLSTM step with Keras ConvLSTM2D semantics (stride 1, padding 'same').

    A single Conv2d over concat(input, hidden) yields the four gates in Keras' order
    (i, f, c, o); its weight is (4F, C_in + F, k, k) = Keras' kernel (k, k, C_in, 4F) and
    recurrent_kernel (k, k, F, 4F) side by side, plus the bias (4F,) -> the same parameter count
    as ConvLSTM2D. Keras adds the bias only to the input convolution; adding it to the sum is the
    same function. activation tanh, recurrent_activation sigmoid:
        i = sigmoid(.), f = sigmoid(.), g = tanh(.), o = sigmoid(.)
        c' = f * c + i * g ;  h' = o * tanh(c')
    Init mirrors Keras (see init_keras_like): unit_forget_bias=True sets the forget-gate bias to 1
    (it changes values, not counts).
    """

    def __init__(self, in_channels: int, filters: int, kernel: int):
        super().__init__()
        if kernel % 2 != 1:
            raise ValueError("ConvLSTMCell supports odd kernels only ('same' padding is symmetric)")
        self.in_channels = in_channels
        self.filters = filters
        self.kernel = kernel
        self.conv = nn.Conv2d(in_channels + filters, 4 * filters, kernel, padding=kernel // 2, bias=True)

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]):
        h, c = state
        gates = self.conv(torch.cat([x, h], dim=1))
        i, f, g, o = torch.chunk(gates, 4, dim=1)
        i = torch.sigmoid(i)
        f = torch.sigmoid(f)
        g = torch.tanh(g)
        o = torch.sigmoid(o)
        c = f * c + i * g
        h = o * torch.tanh(c)
        return h, c

    @torch.no_grad()
    def init_keras_like(self, generator: torch.Generator) -> None:
        """Keras defaults: kernel glorot_uniform, recurrent_kernel orthogonal, bias zeros with
        the forget gate at 1 (unit_forget_bias=True)."""
        n_in, f, k = self.in_channels, self.filters, self.kernel
        w = self.conv.weight  # (4F, n_in + F, k, k)
        nn.init.xavier_uniform_(w[:, :n_in], generator=generator)  # fans k*k*n_in, k*k*4F as Keras
        rec = torch.empty(k * k * f, 4 * f)  # Keras flattens (k, k, F, 4F) to (k*k*F, 4F)
        nn.init.orthogonal_(rec, generator=generator)
        w[:, n_in:] = rec.reshape(k, k, f, 4 * f).permute(3, 2, 0, 1)
        self.conv.bias.zero_()
        self.conv.bias[f : 2 * f] = 1.0


class ConvLSTM2d(nn.Module):
    """Keras' ConvLSTM2D over (N, T, C, H, W) from a zero state; returns the last hidden state
    (N, F, H, W) or, with return_sequences, all of them (N, T, F, H, W)."""

    def __init__(self, in_channels: int, filters: int, kernel: int, return_sequences: bool):
        super().__init__()
        self.cell = ConvLSTMCell(in_channels, filters, kernel)
        self.return_sequences = return_sequences

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t, _, hgt, wid = x.shape
        h = x.new_zeros((n, self.cell.filters, hgt, wid))
        c = h
        outs = []
        for step in range(t):
            h, c = self.cell(x[:, step], (h, c))
            outs.append(h)
        return torch.stack(outs, dim=1) if self.return_sequences else h

    def extra_repr(self) -> str:
        return f"return_sequences={self.return_sequences}"


@torch.no_grad()
def init_keras_like(model: nn.Module, seed: int) -> nn.Module:
    """Deterministic Keras-default init from a private generator: conv/dense weights
    glorot_uniform (torch's xavier_uniform_ uses the same fans), biases zero; ConvLSTM cells as
    Keras. Modules are visited in registration order, so the result depends only on `seed`."""
    gen = torch.Generator().manual_seed(int(seed))
    cell_convs = {id(m.conv) for m in model.modules() if isinstance(m, ConvLSTMCell)}
    for module in model.modules():
        if isinstance(module, ConvLSTMCell):
            module.init_keras_like(gen)
        elif isinstance(module, (nn.Conv2d, nn.Linear)) and id(module) not in cell_convs:
            nn.init.xavier_uniform_(module.weight, generator=gen)
            if module.bias is not None:
                module.bias.zero_()
    return model


class FrameConvNet(nn.Module):
    """A frame model: NHWC raw pixels (N, H, W, 3) -> (N, outputs).

    to_nchw -> normalize -> features (convs + ReLU) -> flatten -> head (dense + ReLU, linear
    output). The flatten is PyTorch's usual NCHW (c, h, w) order, not Keras' (h, w, c):
    keras_to_torch reorders the first dense kernel's rows. (Permuting back to NHWC before
    flattening would avoid that, but torch-pruning 1.6.1 then removes the wrong dense1 columns
    when it prunes the last conv's channels; with the NCHW flatten it is exact.)"""

    def __init__(self, name: str, features: nn.Sequential, head: nn.Sequential):
        super().__init__()
        self.arch = name
        self.to_nchw = ToNCHW()
        self.normalize = Rescale()
        self.features = features
        self.flatten = nn.Flatten()
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.to_nchw(x)
        x = self.normalize(x)
        x = self.features(x)
        x = self.flatten(x)
        return self.head(x)


class SequenceConvLSTMNet(nn.Module):
    """A recurrent model: (N, T, H, W, 3) raw pixels -> (N, outputs).

    Frames are folded into the batch for normalize + features (Keras' TimeDistributed), unfolded
    for the ConvLSTM stack, whose last hidden state (N, F, H, W) is flattened in NCHW order
    (keras_to_torch reorders the first dense kernel's rows) -> head."""

    def __init__(self, name: str, features: nn.Sequential, lstm: nn.Sequential, head: nn.Sequential):
        super().__init__()
        self.arch = name
        self.to_nchw = ToNCHW()
        self.normalize = Rescale()
        self.features = features
        self.lstm = lstm
        self.flatten = nn.Flatten()
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t = x.shape[0], x.shape[1]
        x = x.flatten(0, 1)  # (N*T, H, W, C)
        x = self.to_nchw(x)
        x = self.normalize(x)
        x = self.features(x)
        x = x.unflatten(0, (n, t))  # (N, T, C, H, W)
        x = self.lstm(x)  # (N, F, H, W): the last hidden state
        x = self.flatten(x)
        return self.head(x)
