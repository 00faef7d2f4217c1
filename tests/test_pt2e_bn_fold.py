"""PT2E's conv-BatchNorm folding is skipped only where it has nothing to fold: a BatchNorm on the
input (DeepLearningStudio's PilotNet) with no conv before it. It cost 48 s of every int8 convert."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchao")


def _graph(net):
    net.eval()
    return torch.export.export(net, (torch.rand(2, 3, 8, 8),)).graph


class InputNorm(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.bn, self.conv = torch.nn.BatchNorm2d(3), torch.nn.Conv2d(3, 4, 3)

    def forward(self, x):
        return self.conv(self.bn(x / 255.0))


class ConvNorm(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.bn = torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4)

    def forward(self, x):
        return torch.relu(self.bn(torch.relu(self.conv(x))))


def test_a_conv_before_a_batch_norm_is_found_however_far():
    from pilotopt.techniques._pt2e import conv_feeds_batch_norm

    assert conv_feeds_batch_norm(_graph(InputNorm())) is False
    assert conv_feeds_batch_norm(_graph(ConvNorm())) is True
    assert conv_feeds_batch_norm(_graph(torch.nn.Conv2d(3, 4, 3))) is False  # no BatchNorm at all


def test_the_fold_is_replaced_only_while_converting_a_graph_without_work(monkeypatch):
    from torchao.quantization.pt2e import quantize_pt2e

    from pilotopt.techniques._pt2e import _no_empty_bn_fold

    original = quantize_pt2e._fold_conv_bn_qat
    for net, skipped in ((InputNorm(), True), (ConvNorm(), False)):
        gm = torch.export.export(net.eval(), (torch.rand(2, 3, 8, 8),)).module()
        with _no_empty_bn_fold(gm):
            assert (quantize_pt2e._fold_conv_bn_qat is not original) is skipped
            folded = quantize_pt2e._fold_conv_bn_qat(gm) if skipped else gm
        assert quantize_pt2e._fold_conv_bn_qat is original
        x = torch.rand(2, 3, 8, 8)
        torch.testing.assert_close(folded(x), net(x))  # the clean-up changes no output
