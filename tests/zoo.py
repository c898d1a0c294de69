"""A zoo of compact (MCU-sized) PyTorch networks, one per architecture family, exported to ONNX.

    from zoo import FAMILIES, export
    model = export("mobilenet_v2", opset=13, size=32)   # onnx.ModelProto, input "x", output "y"

Each family keeps the op pattern that defines it (depthwise-separable convs, inverted residuals, squeeze-
excitation gating, fire-module Concat, channel split + shuffle, ...) at small widths. Classifiers end in
global average pool + Linear(10). Weights are random but deterministic; BatchNorm statistics are set from
a batch of random inputs and then perturbed at random (running_mean, running_var, weight, bias), so the
folded Conv weights differ from the raw ones and the activations stay input-dependent and well scaled
(random init alone lets deep stacks collapse to a constant, which would make accuracy checks vacuous).
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
import onnx
import torch
from torch import nn

NUM_CLASSES = 10
OPSETS = (13, 17)


# ----------------------------------------------------------------------------------------------- building blocks


def _act(kind: str | None) -> nn.Module:
    return {
        None: nn.Identity(),
        "relu": nn.ReLU(),
        "relu6": nn.ReLU6(),
        "hswish": nn.Hardswish(),
        "silu": nn.SiLU(),
    }[kind]


def conv_bn(cin, cout, k=3, stride=1, groups=1, act: str | None = "relu", padding=None) -> nn.Sequential:
    pad = k // 2 if padding is None else padding
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, stride, pad, groups=groups, bias=False), nn.BatchNorm2d(cout), _act(act)
    )


class Classifier(nn.Module):
    """features -> global average pool -> Linear(10)."""

    def __init__(self, features: nn.Module, width: int):
        super().__init__()
        self.features = features
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(width, NUM_CLASSES)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))


class SqueezeExcite(nn.Module):
    """Global pool -> 1x1 reduce -> act -> 1x1 expand -> gate; x * gate broadcasts (N,C,1,1) over (N,C,H,W)."""

    def __init__(self, ch: int, reduced: int, act: str, gate: str):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.reduce = nn.Conv2d(ch, reduced, 1)
        self.act = _act(act)
        self.expand = nn.Conv2d(reduced, ch, 1)
        self.gate = {"hsigmoid": nn.Hardsigmoid(), "sigmoid": nn.Sigmoid()}[gate]

    def forward(self, x):
        return x * self.gate(self.expand(self.act(self.reduce(self.pool(x)))))


class InvertedResidual(nn.Module):
    """MobileNetV2/V3, MnasNet and EfficientNet's MBConv: [1x1 expand] -> kxk depthwise -> [SE] -> 1x1 project."""

    def __init__(self, cin, cout, expand, k=3, stride=1, act="relu6", se: tuple[str, str] | None = None):
        super().__init__()
        hidden = cin * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers.append(conv_bn(cin, hidden, 1, act=act))
        layers.append(conv_bn(hidden, hidden, k, stride, groups=hidden, act=act))
        if se is not None:
            layers.append(SqueezeExcite(hidden, max(4, cin // 4), *se))
        layers.append(conv_bn(hidden, cout, 1, act=None))
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        y = self.body(x)
        return x + y if self.residual else y


# ------------------------------------------------------------------------------------------------------ families


def mobilenet_v1() -> nn.Module:
    def ds(cin, cout, stride):  # depthwise 3x3 + pointwise 1x1, each BN + ReLU6
        return nn.Sequential(
            conv_bn(cin, cin, 3, stride, groups=cin, act="relu6"), conv_bn(cin, cout, 1, act="relu6")
        )

    features = nn.Sequential(
        conv_bn(3, 8, 3, 2, act="relu6"), ds(8, 16, 1), ds(16, 32, 2), ds(32, 32, 1), ds(32, 64, 2), ds(64, 64, 1)
    )
    return Classifier(features, 64)


def mobilenet_v2() -> nn.Module:
    features = nn.Sequential(
        conv_bn(3, 8, 3, 2, act="relu6"),
        InvertedResidual(8, 8, 1),
        InvertedResidual(8, 12, 4, stride=2),
        InvertedResidual(12, 12, 4),
        InvertedResidual(12, 16, 4, stride=2),
        InvertedResidual(16, 16, 4),
        conv_bn(16, 64, 1, act="relu6"),
    )
    return Classifier(features, 64)


def mobilenet_v3() -> nn.Module:
    features = nn.Sequential(
        conv_bn(3, 8, 3, 2, act="hswish"),
        InvertedResidual(8, 8, 2, 3, 2, act="relu", se=("relu", "hsigmoid")),
        InvertedResidual(8, 12, 3, 3, 2, act="relu"),
        InvertedResidual(12, 12, 3, 3, 1, act="relu"),
        InvertedResidual(12, 16, 4, 5, 1, act="hswish", se=("relu", "hsigmoid")),
        InvertedResidual(16, 16, 4, 5, 1, act="hswish", se=("relu", "hsigmoid")),
        conv_bn(16, 64, 1, act="hswish"),
    )
    return Classifier(features, 64)


class Fire(nn.Module):
    def __init__(self, cin, squeeze, expand):
        super().__init__()
        self.squeeze = nn.Sequential(nn.Conv2d(cin, squeeze, 1), nn.ReLU())
        self.expand1 = nn.Sequential(nn.Conv2d(squeeze, expand, 1), nn.ReLU())
        self.expand3 = nn.Sequential(nn.Conv2d(squeeze, expand, 3, padding=1), nn.ReLU())

    def forward(self, x):
        s = self.squeeze(x)
        return torch.cat([self.expand1(s), self.expand3(s)], 1)


def squeezenet() -> nn.Module:
    """SqueezeNet 1.1 layout (no BatchNorm, like the original): conv, max pools with ceil_mode, fire modules."""
    features = nn.Sequential(
        nn.Conv2d(3, 16, 3, 2),
        nn.ReLU(),
        nn.MaxPool2d(3, 2, ceil_mode=True),
        Fire(16, 4, 8),
        Fire(16, 4, 8),
        nn.MaxPool2d(3, 2, ceil_mode=True),
        Fire(16, 8, 16),
        Fire(32, 8, 16),
        nn.Conv2d(32, 32, 1),
        nn.ReLU(),
    )
    return Classifier(features, 32)


def channel_shuffle(x, groups: int):
    n, c, h, w = x.size()
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).contiguous().view(n, c, h, w)


class ShuffleUnit(nn.Module):
    def __init__(self, cin, cout, stride, split: str = "chunk"):
        super().__init__()
        self.stride, self.split = stride, split
        half = cout // 2
        if stride == 2:
            self.branch1 = nn.Sequential(
                conv_bn(cin, cin, 3, 2, groups=cin, act=None), conv_bn(cin, half, 1, act="relu")
            )
        b2_in = cin if stride == 2 else half
        self.branch2 = nn.Sequential(
            conv_bn(b2_in, half, 1, act="relu"),
            conv_bn(half, half, 3, stride, groups=half, act=None),
            conv_bn(half, half, 1, act="relu"),
        )

    def forward(self, x):
        if self.stride == 1:
            if self.split == "chunk":
                x1, x2 = x.chunk(2, dim=1)
            else:
                x1, x2 = torch.split(x, x.shape[1] // 2, dim=1)
            out = torch.cat([x1, self.branch2(x2)], 1)
        else:
            out = torch.cat([self.branch1(x), self.branch2(x)], 1)
        return channel_shuffle(out, 2)


def shufflenet_v2() -> nn.Module:
    features = nn.Sequential(
        conv_bn(3, 16, 3, 2, act="relu"),
        nn.MaxPool2d(3, 2, 1),
        ShuffleUnit(16, 32, 2),
        ShuffleUnit(32, 32, 1, "chunk"),
        ShuffleUnit(32, 64, 2),
        ShuffleUnit(64, 64, 1, "split"),
        conv_bn(64, 64, 1, act="relu"),
    )
    return Classifier(features, 64)


def mnasnet() -> nn.Module:
    """MnasNet-A1 shape: separable stem, MBConv3/MBConv6 with 3x3 and 5x5 depthwise, SE (ReLU, sigmoid)."""
    features = nn.Sequential(
        conv_bn(3, 8, 3, 2, act="relu"),
        conv_bn(8, 8, 3, 1, groups=8, act="relu"),
        conv_bn(8, 8, 1, act=None),
        InvertedResidual(8, 12, 3, 3, 2, act="relu"),
        InvertedResidual(12, 12, 3, 3, 1, act="relu"),
        InvertedResidual(12, 16, 3, 5, 2, act="relu", se=("relu", "sigmoid")),
        InvertedResidual(16, 16, 3, 5, 1, act="relu", se=("relu", "sigmoid")),
        InvertedResidual(16, 24, 6, 3, 1, act="relu"),
        conv_bn(24, 64, 1, act="relu"),
    )
    return Classifier(features, 64)


def efficientnet_b0() -> nn.Module:
    """EfficientNet-B0 shape: SiLU everywhere, MBConv1 then MBConv6 (3x3 and 5x5), SE (SiLU, sigmoid)."""
    se = ("silu", "sigmoid")
    features = nn.Sequential(
        conv_bn(3, 8, 3, 2, act="silu"),
        InvertedResidual(8, 8, 1, 3, 1, act="silu", se=se),
        InvertedResidual(8, 12, 6, 3, 2, act="silu", se=se),
        InvertedResidual(12, 12, 6, 3, 1, act="silu", se=se),
        InvertedResidual(12, 16, 6, 5, 2, act="silu", se=se),
        InvertedResidual(16, 16, 6, 5, 1, act="silu", se=se),
        conv_bn(16, 64, 1, act="silu"),
    )
    return Classifier(features, 64)


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride=1):
        super().__init__()
        self.a = conv_bn(cin, cout, 3, stride, act="relu")
        self.b = conv_bn(cout, cout, 3, 1, act=None)
        self.down = None if stride == 1 and cin == cout else conv_bn(cin, cout, 1, stride, act=None, padding=0)

    def forward(self, x):
        shortcut = x if self.down is None else self.down(x)
        return torch.relu(self.b(self.a(x)) + shortcut)


def resnet() -> nn.Module:
    features = nn.Sequential(
        conv_bn(3, 16, 3, 2, act="relu"),
        BasicBlock(16, 16),
        BasicBlock(16, 24, 2),
        BasicBlock(24, 32, 2),
    )
    return Classifier(features, 32)


def ds_cnn() -> nn.Module:
    """Keyword spotting (Hello Edge DS-CNN, small): 1 x T x 10 MFCC input, 10x4 stride-2 conv, 4 DS blocks."""

    def ds(ch):
        return nn.Sequential(conv_bn(ch, ch, 3, 1, groups=ch, act="relu"), conv_bn(ch, ch, 1, act="relu"))

    features = nn.Sequential(
        conv_bn(1, 32, (10, 4), (2, 2), act="relu", padding=(5, 1)), ds(32), ds(32), ds(32), ds(32)
    )
    return Classifier(features, 32)


class AutoEncoder(nn.Module):
    """Conv autoencoder: stride-2 conv encoder; decoder nearest Upsample + conv, then one ConvTranspose2d."""

    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(conv_bn(1, 8, 3, 2, act="relu"), conv_bn(8, 16, 3, 2, act="relu"))
        self.decoder = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="nearest"),
            conv_bn(16, 8, 3, 1, act="relu"),
            nn.ConvTranspose2d(8, 1, 4, 2, 1),
            nn.Sigmoid(),
        )

    def forward(self, x):
        return self.decoder(self.encoder(x))


@dataclass(frozen=True)
class Family:
    build: object  # () -> nn.Module
    shapes: dict  # size name -> input shape (with the batch of 1)
    classifier: bool = True


def _image(*sizes: int, channels: int = 3) -> dict:
    return {s: (1, channels, s, s) for s in sizes}


FAMILIES: dict[str, Family] = {
    "mobilenet_v1": Family(mobilenet_v1, _image(32, 64)),
    "mobilenet_v2": Family(mobilenet_v2, _image(32, 64)),
    "mobilenet_v3": Family(mobilenet_v3, _image(32, 64)),
    "squeezenet": Family(squeezenet, _image(32, 64)),
    "shufflenet_v2": Family(shufflenet_v2, _image(32, 64)),
    "mnasnet": Family(mnasnet, _image(32, 64)),
    "efficientnet_b0": Family(efficientnet_b0, _image(32, 64)),
    "resnet": Family(resnet, _image(32, 64)),
    "ds_cnn": Family(ds_cnn, {49: (1, 1, 49, 10), 98: (1, 1, 98, 10)}),
    "autoencoder": Family(AutoEncoder, _image(32, 64, channels=1), classifier=False),
}


# ----------------------------------------------------------------------------------------- weights and export


def _seed_of(family: str) -> int:
    return sum(ord(c) * 31**i for i, c in enumerate(family)) % (2**31)


def samples(family: str, size, n: int, seed: int):
    """`n` standard-normal inputs of `family` at `size`: (n, *input shape) float32."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, *input_shape(family, size))).astype(np.float32)


@torch.no_grad()
def randomize(net: nn.Module, family: str, size, seed: int) -> nn.Module:
    """Deterministic random weights and data-dependent, then perturbed, BatchNorm statistics.

    Convs and Linears get He-normal weights and small random biases. Each BatchNorm first records the
    statistics of 8 standard-normal inputs (one train-mode pass, momentum 1), then all four of its parameters
    are perturbed: running_mean shifted by 0.2 std, running_var scaled by 0.6..1.6, weight 0.5..1.5, bias
    +-0.2. Folding them is therefore far from the identity, and no layer collapses to a constant or saturates
    (purely random statistics on default-initialised weights make deep stacks output a constant).
    """
    g = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            fan_in = m.weight[:, 0].numel() if isinstance(m, nn.ConvTranspose2d) else m.weight[0].numel()
            m.weight.copy_(torch.randn(m.weight.shape, generator=g) * (2.0 / fan_in) ** 0.5)
            if m.bias is not None:
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
    bns = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = 1.0
    net.train()
    net(torch.randn(8, *input_shape(family, size)[1:], generator=g))
    net.eval()
    for bn in bns:
        n = bn.num_features
        bn.running_mean.add_(torch.randn(n, generator=g) * 0.2 * bn.running_var.sqrt())
        bn.running_var.mul_(torch.rand(n, generator=g) + 0.6)
        bn.weight.copy_(torch.rand(n, generator=g) + 0.5)
        bn.bias.copy_(torch.randn(n, generator=g) * 0.2)
        bn.momentum = 0.1
    return net


def build(family: str, size) -> tuple[nn.Module, tuple]:
    """The eval-mode network of `family` (deterministic weights) and its input shape for `size`."""
    fam = FAMILIES[family]
    shape = fam.shapes[size]
    torch.manual_seed(_seed_of(family))
    net = fam.build()
    return randomize(net, family, size, _seed_of(family)).eval(), shape


def export(family: str, opset: int, size) -> onnx.ModelProto:
    """torch.onnx.export (TorchScript exporter, dynamo=False) of `family` at `opset` for input `size`.

    Constant folding is off so BatchNormalization nodes stay in the graph for the compiler to fold.
    """
    net, shape = build(family, size)
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net,
            torch.zeros(shape),
            buf,
            opset_version=opset,
            do_constant_folding=False,
            dynamo=False,
            input_names=["x"],
            output_names=["y"],
        )
    return onnx.load_from_string(buf.getvalue())


def input_shape(family: str, size) -> tuple:
    return FAMILIES[family].shapes[size]


def sizes(family: str) -> list:
    return list(FAMILIES[family].shapes)


def ort_quantize(model: onnx.ModelProto, calib: np.ndarray) -> bytes:
    """onnxruntime's own static quantizer on `model`: quant_pre_process, then quantize_static with QDQ,
    per-channel weights, MinMax calibration, int8 activations and weights.

    `calib` holds the calibration samples (N x input shape); returns the serialized QDQ model.
    """
    import tempfile
    from pathlib import Path

    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.items = iter([{model.graph.input[0].name: np.asarray(x, np.float32)} for x in calib])

        def get_next(self):
            return next(self.items, None)

    with tempfile.TemporaryDirectory(prefix="zoo_ort_") as tmp:
        src, pre, dst = (Path(tmp) / f for f in ("float.onnx", "preprocessed.onnx", "qdq.onnx"))
        onnx.save(model, src)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # onnxruntime's documented first step: shape inference and graph optimization (folds constants and
            # BatchNorm). Without it, quantize_static also quantizes the constant `scales` of Resize (computed by
            # a Concat in the exported graph), and the quantized model then fails in onnxruntime.
            quant_pre_process(str(src), str(pre))
            quantize_static(
                str(pre),
                str(dst),
                Reader(),
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                activation_type=QuantType.QInt8,
                weight_type=QuantType.QInt8,
                calibrate_method=CalibrationMethod.MinMax,
            )
        return dst.read_bytes()
