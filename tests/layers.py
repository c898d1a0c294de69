"""PyTorch's standard layers, one small single-input module each, exported to ONNX the ways users export them.

    from layers import LAYERS, export
    model = export("conv1d_dilated", opset=13)            # legacy TorchScript exporter (dynamo=False)
    model = export("conv1d_dilated", opset=18, dynamo=True)

The set covers torch.nn's 1-D and 2-D layers that run on one float tensor: convolutions (strides, dilation,
padding modes, groups), transposed convolutions, pooling, normalisation, padding, resampling, reshaping and the
activations. Weights are random but deterministic; normalisation statistics are perturbed away from identity so
that no layer is trivially the identity.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import onnx
import torch
from torch import nn


@dataclass(frozen=True)
class Layer:
    make: Callable[[], nn.Module]
    shape: tuple[int, ...]  # input shape, batch 1


S1 = (1, 8, 32)  # 1-D: channels x time
S2 = (1, 8, 10, 12)  # 2-D: channels x height x width


LAYERS: dict[str, Layer] = {
    # --- 1-D convolutions and pooling (time series, keyword spotting)
    "conv1d": Layer(lambda: nn.Conv1d(8, 16, 3), S1),
    "conv1d_same": Layer(lambda: nn.Conv1d(8, 16, 5, padding="same"), S1),
    "conv1d_stride2": Layer(lambda: nn.Conv1d(8, 16, 4, stride=2, padding=1), S1),
    "conv1d_dilated": Layer(lambda: nn.Conv1d(8, 8, 3, dilation=4, padding=4), S1),
    "conv1d_grouped": Layer(lambda: nn.Conv1d(8, 16, 3, groups=4, padding=1), S1),
    "conv1d_depthwise": Layer(lambda: nn.Conv1d(8, 8, 5, groups=8, padding=2), S1),
    "conv1d_reflect": Layer(lambda: nn.Conv1d(8, 8, 3, padding=1, padding_mode="reflect"), S1),
    "conv1d_causal": Layer(lambda: nn.Sequential(nn.ConstantPad1d((2, 0), 0.0), nn.Conv1d(8, 8, 3)), S1),
    "conv_transpose1d": Layer(lambda: nn.ConvTranspose1d(8, 4, 4, stride=2, padding=1), S1),
    "maxpool1d": Layer(lambda: nn.MaxPool1d(3, stride=2, padding=1), S1),
    "avgpool1d": Layer(lambda: nn.AvgPool1d(4), S1),
    "adaptive_avgpool1d": Layer(lambda: nn.AdaptiveAvgPool1d(1), S1),
    "adaptive_maxpool1d": Layer(lambda: nn.AdaptiveMaxPool1d(1), S1),
    "batchnorm1d": Layer(lambda: nn.BatchNorm1d(8), S1),
    "instancenorm1d": Layer(lambda: nn.InstanceNorm1d(8, affine=True), S1),
    "groupnorm1d": Layer(lambda: nn.GroupNorm(2, 8), S1),
    "constant_pad1d": Layer(lambda: nn.ConstantPad1d((1, 3), 0.5), S1),
    "reflection_pad1d": Layer(lambda: nn.ReflectionPad1d(2), S1),
    "replication_pad1d": Layer(lambda: nn.ReplicationPad1d((3, 1)), S1),
    "upsample1d": Layer(lambda: nn.Upsample(scale_factor=2, mode="nearest"), S1),
    "linear_on_time": Layer(lambda: nn.Linear(32, 10), S1),
    "flatten_linear": Layer(lambda: nn.Sequential(nn.Flatten(), nn.Linear(8 * 32, 10)), S1),
    # --- 2-D convolutions
    "conv2d": Layer(lambda: nn.Conv2d(8, 16, 3), S2),
    "conv2d_same": Layer(lambda: nn.Conv2d(8, 16, 3, padding="same"), S2),
    "conv2d_stride2": Layer(lambda: nn.Conv2d(8, 16, 3, stride=2, padding=1), S2),
    "conv2d_dilated": Layer(lambda: nn.Conv2d(8, 8, 3, dilation=2, padding=2), S2),
    "conv2d_rect": Layer(lambda: nn.Conv2d(8, 8, (1, 5), padding=(0, 2)), S2),
    "conv2d_grouped": Layer(lambda: nn.Conv2d(8, 16, 3, groups=2, padding=1), S2),
    "conv2d_grouped4": Layer(lambda: nn.Conv2d(8, 8, 1, groups=4), S2),
    "conv2d_depthwise": Layer(lambda: nn.Conv2d(8, 8, 3, groups=8, padding=1), S2),
    "conv2d_depthwise_mult2": Layer(lambda: nn.Conv2d(8, 16, 3, groups=8, padding=1), S2),
    "conv2d_reflect": Layer(lambda: nn.Conv2d(8, 8, 3, padding=1, padding_mode="reflect"), S2),
    "conv2d_replicate": Layer(lambda: nn.Conv2d(8, 8, 3, padding=1, padding_mode="replicate"), S2),
    "conv2d_circular": Layer(lambda: nn.Conv2d(8, 8, 3, padding=1, padding_mode="circular"), S2),
    "conv_transpose2d": Layer(lambda: nn.ConvTranspose2d(8, 4, 3, stride=2, padding=1, output_padding=1), S2),
    "conv_transpose2d_grouped": Layer(lambda: nn.ConvTranspose2d(8, 8, 2, stride=2, groups=2), S2),
    # --- 2-D pooling
    "maxpool2d": Layer(lambda: nn.MaxPool2d(2), S2),
    "maxpool2d_pad": Layer(lambda: nn.MaxPool2d(3, stride=2, padding=1), S2),
    "maxpool2d_ceil": Layer(lambda: nn.MaxPool2d(3, stride=2, ceil_mode=True), S2),
    "avgpool2d": Layer(lambda: nn.AvgPool2d(2), S2),
    "avgpool2d_pad": Layer(lambda: nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False), S2),
    "adaptive_avgpool2d": Layer(lambda: nn.AdaptiveAvgPool2d(1), S2),
    "adaptive_avgpool2d_2x2": Layer(lambda: nn.AdaptiveAvgPool2d((5, 6)), S2),
    "adaptive_maxpool2d": Layer(lambda: nn.AdaptiveMaxPool2d(1), S2),
    "lppool2d": Layer(lambda: nn.LPPool2d(2, 2), S2),
    # --- normalisation
    "batchnorm2d": Layer(lambda: nn.BatchNorm2d(8), S2),
    "instancenorm2d": Layer(lambda: nn.InstanceNorm2d(8, affine=True), S2),
    "instancenorm2d_plain": Layer(lambda: nn.InstanceNorm2d(8), S2),
    "groupnorm2d": Layer(lambda: nn.GroupNorm(4, 8), S2),
    "groupnorm2d_one_group": Layer(lambda: nn.GroupNorm(1, 8), S2),
    "local_response_norm": Layer(lambda: nn.LocalResponseNorm(3), S2),
    # --- padding, resampling, reshaping
    "zero_pad2d": Layer(lambda: nn.ZeroPad2d((1, 2, 0, 1)), S2),
    "constant_pad2d": Layer(lambda: nn.ConstantPad2d(1, -0.5), S2),
    "reflection_pad2d": Layer(lambda: nn.ReflectionPad2d(2), S2),
    "replication_pad2d": Layer(lambda: nn.ReplicationPad2d(1), S2),
    "upsample_nearest2d": Layer(lambda: nn.Upsample(scale_factor=2, mode="nearest"), S2),
    "upsample_bilinear2d": Layer(lambda: nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False), S2),
    "upsample_bilinear2d_ac": Layer(lambda: nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True), S2),
    "pixel_shuffle": Layer(lambda: nn.PixelShuffle(2), S2),
    "pixel_unshuffle": Layer(lambda: nn.PixelUnshuffle(2), S2),
    "channel_shuffle": Layer(lambda: nn.ChannelShuffle(2), S2),
    "flatten": Layer(lambda: nn.Flatten(), S2),
    "unflatten": Layer(lambda: nn.Unflatten(1, (2, 4)), S2),
    "dropout2d": Layer(lambda: nn.Dropout2d(0.3), S2),
    "identity": Layer(lambda: nn.Identity(), S2),
    # --- activations
    "relu": Layer(lambda: nn.ReLU(), S2),
    "relu6": Layer(lambda: nn.ReLU6(), S2),
    "leaky_relu": Layer(lambda: nn.LeakyReLU(0.1), S2),
    "prelu": Layer(lambda: nn.PReLU(), S2),
    "prelu_channels": Layer(lambda: nn.PReLU(8), S2),
    "elu": Layer(lambda: nn.ELU(), S2),
    "selu": Layer(lambda: nn.SELU(), S2),
    "celu": Layer(lambda: nn.CELU(0.5), S2),
    "gelu": Layer(lambda: nn.GELU(), S2),
    "gelu_tanh": Layer(lambda: nn.GELU(approximate="tanh"), S2),
    "silu": Layer(lambda: nn.SiLU(), S2),
    "mish": Layer(lambda: nn.Mish(), S2),
    "hardswish": Layer(lambda: nn.Hardswish(), S2),
    "hardsigmoid": Layer(lambda: nn.Hardsigmoid(), S2),
    "hardtanh": Layer(lambda: nn.Hardtanh(-0.5, 0.5), S2),
    "sigmoid": Layer(lambda: nn.Sigmoid(), S2),
    "tanh": Layer(lambda: nn.Tanh(), S2),
    "softplus": Layer(lambda: nn.Softplus(), S2),
    "softsign": Layer(lambda: nn.Softsign(), S2),
    "softshrink": Layer(lambda: nn.Softshrink(0.5), S2),
    "hardshrink": Layer(lambda: nn.Hardshrink(0.5), S2),
    "tanhshrink": Layer(lambda: nn.Tanhshrink(), S2),
    "threshold": Layer(lambda: nn.Threshold(0.1, 20.0), S2),
    "logsigmoid": Layer(lambda: nn.LogSigmoid(), S2),
    "glu": Layer(lambda: nn.GLU(dim=1), S2),
    "softmax_channels": Layer(lambda: nn.Softmax(dim=1), S2),
    "softmax_last": Layer(lambda: nn.Softmax(dim=-1), S2),
    "log_softmax_channels": Layer(lambda: nn.LogSoftmax(dim=1), S2),
    "softmin": Layer(lambda: nn.Softmin(dim=1), S2),
    "softmax2d": Layer(lambda: nn.Softmax2d(), S2),
    "softmax_1d": Layer(lambda: nn.Softmax(dim=1), S1),
    # --- linear layers
    "linear": Layer(lambda: nn.Linear(24, 16), (1, 24)),
    "linear_no_bias": Layer(lambda: nn.Linear(24, 16, bias=False), (1, 24)),
    "mlp": Layer(lambda: nn.Sequential(nn.Linear(24, 32), nn.ReLU(), nn.Dropout(0.2), nn.Linear(32, 10),
                                       nn.Softmax(-1)), (1, 24)),  # fmt: skip
    "linear_on_tokens": Layer(lambda: nn.Linear(12, 6), (1, 5, 12)),
    "batchnorm1d_features": Layer(lambda: nn.BatchNorm1d(24), (1, 24)),  # on (N, C), not after a Linear
    "batchnorm3d": Layer(lambda: nn.BatchNorm3d(4), (1, 4, 3, 5, 6)),
}


@torch.no_grad()
def build(name: str, seed: int = 0) -> nn.Module:
    """The layer with deterministic random parameters and perturbed normalisation statistics, in eval mode."""
    torch.manual_seed(seed)
    net = LAYERS[name].make().eval()
    for m in net.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
        norms = (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.InstanceNorm1d, nn.InstanceNorm2d)
        if getattr(m, "weight", None) is not None and isinstance(m, norms):
            m.weight.uniform_(0.5, 1.5)
            m.bias.uniform_(-0.5, 0.5)
        if isinstance(m, nn.PReLU):
            m.weight.uniform_(0.05, 0.5)
    return net


def export(name: str, opset: int, dynamo: bool = False) -> onnx.ModelProto:
    net, shape = build(name), LAYERS[name].shape
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            program = torch.onnx.export(net, (torch.zeros(shape),), dynamo=True, opset_version=opset, verbose=False)
            buf.write(program.model_proto.SerializeToString())
        else:
            torch.onnx.export(net, torch.zeros(shape), buf, opset_version=opset, dynamo=False,
                              input_names=["x"], output_names=["y"])  # fmt: skip
    return onnx.load_from_string(buf.getvalue())


def samples(name: str, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, *LAYERS[name].shape)).astype(np.float32)
