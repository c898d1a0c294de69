"""The CNN families of the network zoo (tests/zoo.py): MobileNet v1-v3, SqueezeNet, ShuffleNet v2, MnasNet,
EfficientNet-B0, ResNet, DS-CNN keyword spotting and a convolutional autoencoder, at MCU widths."""

from __future__ import annotations

import torch
from torch import nn

from zoo_blocks import Classifier, Family, activation, channel_shuffle, conv_bn, image


class SqueezeExcite(nn.Module):
    """Global pool -> 1x1 reduce -> act -> 1x1 expand -> gate; x * gate broadcasts (N,C,1,1) over (N,C,H,W)."""

    def __init__(self, ch: int, reduced: int, act: str, gate: str):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.reduce = nn.Conv2d(ch, reduced, 1)
        self.act = activation(act)
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




CNN_FAMILIES: dict[str, Family] = {
    "mobilenet_v1": Family(mobilenet_v1, image(32, 64)),
    "mobilenet_v2": Family(mobilenet_v2, image(32, 64)),
    "mobilenet_v3": Family(mobilenet_v3, image(32, 64)),
    "squeezenet": Family(squeezenet, image(32, 64)),
    "shufflenet_v2": Family(shufflenet_v2, image(32, 64)),
    "mnasnet": Family(mnasnet, image(32, 64)),
    "efficientnet_b0": Family(efficientnet_b0, image(32, 64)),
    "resnet": Family(resnet, image(32, 64)),
    "ds_cnn": Family(ds_cnn, {49: (1, 1, 49, 10), 98: (1, 1, 98, 10)}),
    "autoencoder": Family(AutoEncoder, image(32, 64, channels=1), classifier=False),
}

