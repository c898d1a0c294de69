"""1-D networks (TCN, TC-ResNet keyword spotting) from PyTorch, both exporters: rank-3 Conv, ConvTranspose,
pooling, BatchNorm1d, padding and resampling run on the 2-D kernels with H = 1 (passes/lift_1d.py).

Oracles: the C equals the int8 reference bit for bit (sanitizers), the float reference equals onnxruntime, and
the int8 output keeps its SQNR against onnxruntime's float model. The kernel-call lists check that neighbouring
1-D layers exchange their tensors without layout copies.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from conftest import check_model, torch_export
from torch import nn


def _export(net: nn.Module, shape, dynamo: bool) -> onnx.ModelProto:
    return torch_export(net, shape, dynamo)


class TemporalBlock(nn.Module):
    """Causal dilated conv -> BN -> ReLU -> 1x1 conv, plus the residual, then ReLU (a TCN block)."""

    def __init__(self, channels: int, dilation: int):
        super().__init__()
        self.pad = nn.ConstantPad1d((2 * dilation, 0), 0.0)
        self.conv = nn.Conv1d(channels, channels, 3, dilation=dilation)
        self.bn = nn.BatchNorm1d(channels)
        self.mix = nn.Conv1d(channels, channels, 1)

    def forward(self, x):
        return torch.relu(x + self.mix(torch.relu(self.bn(self.conv(self.pad(x))))))


class TCN(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv1d(4, 16, 1)
        self.blocks = nn.Sequential(TemporalBlock(16, 1), TemporalBlock(16, 2), TemporalBlock(16, 4))
        self.pool = nn.AdaptiveAvgPool1d(1)
        self.fc = nn.Linear(16, 5)

    def forward(self, x):
        return self.fc(self.pool(self.blocks(self.stem(x))).flatten(1))


class TCResNet(nn.Module):
    """TC-ResNet-8-like keyword spotting: MFCC features as channels, convolutions along time, strided blocks."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv1d(20, 16, 3, padding=1, bias=False)
        self.a = nn.Sequential(nn.Conv1d(16, 24, 9, stride=2, padding=4, bias=False), nn.BatchNorm1d(24), nn.ReLU(),
                               nn.Conv1d(24, 24, 9, padding=4, bias=False), nn.BatchNorm1d(24))  # fmt: skip
        self.a_skip = nn.Sequential(nn.Conv1d(16, 24, 1, stride=2, bias=False), nn.BatchNorm1d(24), nn.ReLU())
        self.pool = nn.MaxPool1d(2)
        self.head = nn.Sequential(nn.AvgPool1d(4), nn.Flatten(), nn.Linear(24 * 3, 12))

    def forward(self, x):
        x = self.stem(x)
        return self.head(self.pool(torch.relu(self.a(x) + self.a_skip(x))))


@torch.no_grad()
def _randomized(net: nn.Module, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm1d):
            m.running_mean.uniform_(-0.3, 0.3)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.uniform_(0.5, 1.5)
            m.bias.uniform_(-0.3, 0.3)
    return net.eval()


@pytest.mark.parametrize("dynamo", [False, True], ids=["legacy", "dynamo"])
# Copies: the caller's (N, C, L) input into NHWC, and for TC-ResNet the Flatten of its (N, C, L) features,
# which reads them channel-major.
@pytest.mark.parametrize("family,shape,copies", [(TCN, (1, 4, 40), 1), (TCResNet, (1, 20, 48), 2)],
                         ids=["tcn", "tc_resnet"])  # fmt: skip
def test_1d_network_runs_on_2d_kernels_without_inner_copies(family, shape, copies, dynamo):
    model = _export(_randomized(family(), 0), shape, dynamo)
    compiled, _ = check_model(model, shape, min_sqnr=30.0, n_test=8)
    kernels = [c.kernel for c in compiled.program.calls]
    assert kernels.count("mcu_transpose_s8") == copies, kernels
    assert "mcu_conv_s8_fast" in kernels
    ops = [n.op for n in compiled.float_graph.nodes]
    assert "BatchNormalization" not in ops and "Pad" not in ops, ops  # folded into the convolutions


def test_1d_layer_with_a_computed_weight_is_refused_in_one_line():
    """A rank-3 Conv whose weight is a graph input cannot be lifted: refused before calibration."""
    from conftest import make_model
    from onnx import helper

    import mcucompile

    model = make_model([helper.make_node("Conv", ["x", "w"], ["y"])], {"x": (1, 4, 9), "w": (2, 4, 3)}, ["y"])
    with pytest.raises(mcucompile.CompileError, match="node 'Conv_0' \\(Conv\\)"):
        mcucompile.compile(model, calibration={"x": np.zeros((1, 1, 4, 9), np.float32),
                                               "w": np.zeros((1, 2, 4, 3), np.float32)})  # fmt: skip
