"""The breadth families of the network zoo (tests/zoo.py): what users export beyond the classic mobile CNNs.

Time series and keyword spotting on 1-D convolutions (TCN, TC-ResNet), grouped convolutions (ResNeXt, ShuffleNet
v1), normalisation by the running input (GroupNorm, InstanceNorm), data movement at rank 5-6 (PixelShuffle
super-resolution, a YOLO head's view + permute), and the classic model-zoo structures (DenseNet's concatenating
blocks, Inception's parallel branches), at MCU widths.
"""

from __future__ import annotations

import torch
from torch import nn

from zoo_blocks import NUM_CLASSES, Classifier, Family, channel_shuffle, conv_bn, image


def conv1d_bn(cin, cout, k, stride=1, dilation=1, act=True, causal=False) -> nn.Sequential:
    pad = (k - 1) * dilation
    layers: list[nn.Module] = [nn.ConstantPad1d((pad, 0), 0.0)] if causal else []
    layers += [nn.Conv1d(cin, cout, k, stride, 0 if causal else pad // 2, dilation, bias=False), nn.BatchNorm1d(cout)]
    return nn.Sequential(*layers, *([nn.ReLU()] if act else []))


class TemporalBlock(nn.Module):
    """Two causal dilated convolutions and a residual (Bai et al.'s TCN block)."""

    def __init__(self, ch: int, dilation: int):
        super().__init__()
        self.body = nn.Sequential(conv1d_bn(ch, ch, 3, dilation=dilation, causal=True),
                                  conv1d_bn(ch, ch, 3, dilation=dilation, act=False, causal=True))  # fmt: skip

    def forward(self, x):
        return torch.relu(x + self.body(x))


class Head1d(nn.Module):
    def __init__(self, features: nn.Module, width: int):
        super().__init__()
        self.features, self.pool, self.fc = features, nn.AdaptiveAvgPool1d(1), nn.Linear(width, NUM_CLASSES)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))


def tcn() -> nn.Module:
    """Sensor time series: 6 channels (an IMU) x time, dilations 1, 2, 4, 8."""
    return Head1d(nn.Sequential(conv1d_bn(6, 16, 1), *(TemporalBlock(16, d) for d in (1, 2, 4, 8))), 16)


class TCResBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.body = nn.Sequential(conv1d_bn(cin, cout, 9, stride), conv1d_bn(cout, cout, 9, act=False))
        self.skip = conv1d_bn(cin, cout, 1, stride) if stride != 1 or cin != cout else nn.Identity()

    def forward(self, x):
        return torch.relu(self.body(x) + self.skip(x))


def tc_resnet() -> nn.Module:
    """Keyword spotting TC-ResNet-8: the MFCC coefficients as channels, convolutions along time."""
    features = nn.Sequential(conv1d_bn(20, 16, 3), TCResBlock(16, 24, 2), TCResBlock(24, 32, 2), TCResBlock(32, 48, 2))
    return Head1d(features, 48)


class Bottleneck(nn.Module):
    """ResNeXt: 1x1 reduce -> grouped 3x3 (cardinality 4) -> 1x1 expand, plus the shortcut."""

    def __init__(self, cin, width, cout, stride, groups=4):
        super().__init__()
        self.body = nn.Sequential(conv_bn(cin, width, 1), conv_bn(width, width, 3, stride, groups=groups),
                                  conv_bn(width, cout, 1, act=None))  # fmt: skip
        self.down = None if stride == 1 and cin == cout else conv_bn(cin, cout, 1, stride, act=None, padding=0)

    def forward(self, x):
        return torch.relu(self.body(x) + (x if self.down is None else self.down(x)))


def resnext() -> nn.Module:
    features = nn.Sequential(conv_bn(3, 16, 3, 2), Bottleneck(16, 16, 32, 1), Bottleneck(32, 24, 48, 2),
                             Bottleneck(48, 32, 64, 2))  # fmt: skip
    return Classifier(features, 64)


class ShuffleV1Unit(nn.Module):
    """ShuffleNet v1: grouped 1x1, channel shuffle, depthwise 3x3, grouped 1x1; stride 2 concatenates an average
    pool of the input."""

    def __init__(self, cin, cout, stride, groups=2):
        super().__init__()
        self.stride, self.groups = stride, groups
        mid = cout // 4
        out = cout - cin if stride == 2 else cout
        self.reduce = conv_bn(cin, mid, 1, groups=groups)
        self.dw = conv_bn(mid, mid, 3, stride, groups=mid, act=None)
        self.expand = conv_bn(mid, out, 1, groups=groups, act=None)

    def forward(self, x):
        y = self.expand(self.dw(channel_shuffle(self.reduce(x), self.groups)))
        if self.stride == 2:
            return torch.relu(torch.cat([nn.functional.avg_pool2d(x, 3, 2, 1), y], 1))
        return torch.relu(x + y)


def shufflenet_v1() -> nn.Module:
    features = nn.Sequential(conv_bn(3, 16, 3, 2), ShuffleV1Unit(16, 48, 2), ShuffleV1Unit(48, 48, 1),
                             ShuffleV1Unit(48, 96, 2), ShuffleV1Unit(96, 96, 1))  # fmt: skip
    return Classifier(features, 96)


def gn_block(cin, cout, stride=1, groups=4) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.GroupNorm(groups, cout), nn.ReLU())


def groupnorm_cnn() -> nn.Module:
    """A small-batch-friendly CNN: GroupNorm instead of BatchNorm (it cannot fold into the convolutions)."""
    return Classifier(nn.Sequential(gn_block(3, 16, 2), gn_block(16, 16), gn_block(16, 32, 2), gn_block(32, 32)), 32)


class StyleNet(nn.Module):
    """Image-to-image with InstanceNorm (fast style transfer's layout): down, residual, nearest up, tanh out."""

    def __init__(self):
        super().__init__()

        def conv_in(cin, cout, stride=1):
            return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.InstanceNorm2d(cout, affine=True), nn.ReLU())

        self.down = nn.Sequential(conv_in(3, 8), conv_in(8, 16, 2))
        self.res = nn.Sequential(conv_in(16, 16), nn.Conv2d(16, 16, 3, 1, 1), nn.InstanceNorm2d(16, affine=True))
        self.up = nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), conv_in(16, 8), nn.Conv2d(8, 3, 3, 1, 1))

    def forward(self, x):
        y = self.down(x)
        return torch.tanh(self.up(y + self.res(y)))


class ESPCN(nn.Module):
    """Super-resolution by sub-pixel convolution: the last conv makes r^2 channels that PixelShuffle arranges."""

    def __init__(self, r=2):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(1, 16, 5, 1, 2), nn.Tanh(), nn.Conv2d(16, 8, 3, 1, 1), nn.Tanh(),
                                  nn.Conv2d(8, r * r, 3, 1, 1), nn.PixelShuffle(r))  # fmt: skip

    def forward(self, x):
        return self.body(x)


class YoloHead(nn.Module):
    """A detector head: 3 anchors x (4 box + 1 objectness + 2 classes) per cell, viewed as (b, 3, 7, h, w) and
    permuted to (b, 3, h, w, 7) as YOLO does, then sigmoid."""

    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(conv_bn(3, 16, 3, 2), conv_bn(16, 32, 3, 2), conv_bn(32, 32, 3, 1))
        self.head = nn.Conv2d(32, 3 * 7, 1)

    def forward(self, x):
        y = self.head(self.backbone(x))
        b, _, h, w = y.shape
        return torch.sigmoid(y.view(b, 3, 7, h, w).permute(0, 1, 3, 4, 2))


class DenseBlock(nn.Module):
    """DenseNet: each layer (BN-ReLU-1x1-BN-ReLU-3x3) sees the concatenation of all earlier outputs."""

    def __init__(self, cin, growth, layers):
        super().__init__()
        self.layers = nn.ModuleList(
            nn.Sequential(nn.BatchNorm2d(cin + i * growth), nn.ReLU(), nn.Conv2d(cin + i * growth, 2 * growth, 1,
                          bias=False), nn.BatchNorm2d(2 * growth), nn.ReLU(), nn.Conv2d(2 * growth, growth, 3, 1, 1,
                          bias=False)) for i in range(layers))  # fmt: skip

    def forward(self, x):
        for layer in self.layers:
            x = torch.cat([x, layer(x)], 1)
        return x


def densenet() -> nn.Module:
    def transition(cin, cout):
        return nn.Sequential(nn.BatchNorm2d(cin), nn.ReLU(), nn.Conv2d(cin, cout, 1, bias=False), nn.AvgPool2d(2))

    features = nn.Sequential(conv_bn(3, 16, 3, 2), DenseBlock(16, 8, 3), transition(40, 24), DenseBlock(24, 8, 3),
                             nn.BatchNorm2d(48), nn.ReLU())  # fmt: skip
    return Classifier(features, 48)


class InceptionBlock(nn.Module):
    """GoogLeNet's block: 1x1, 1x1 -> 3x3, 1x1 -> 5x5 and 3x3 max pool -> 1x1, concatenated."""

    def __init__(self, cin, c1, c3r, c3, c5r, c5, cp):
        super().__init__()
        self.b1 = conv_bn(cin, c1, 1)
        self.b3 = nn.Sequential(conv_bn(cin, c3r, 1), conv_bn(c3r, c3, 3))
        self.b5 = nn.Sequential(conv_bn(cin, c5r, 1), conv_bn(c5r, c5, 5))
        self.bp = nn.Sequential(nn.MaxPool2d(3, 1, 1), conv_bn(cin, cp, 1))

    def forward(self, x):
        return torch.cat([self.b1(x), self.b3(x), self.b5(x), self.bp(x)], 1)


def inception() -> nn.Module:
    features = nn.Sequential(conv_bn(3, 16, 3, 2), nn.MaxPool2d(3, 2, 1), InceptionBlock(16, 8, 8, 16, 4, 4, 4),
                             InceptionBlock(32, 16, 8, 16, 4, 8, 8))  # fmt: skip
    return Classifier(features, 48)


BREADTH_FAMILIES: dict[str, Family] = {
    "tcn": Family(tcn, {64: (1, 6, 64), 128: (1, 6, 128)}),
    "tc_resnet": Family(tc_resnet, {49: (1, 20, 49), 98: (1, 20, 98)}),
    "resnext": Family(resnext, image(32, 64)),
    "shufflenet_v1": Family(shufflenet_v1, image(32, 64)),
    "groupnorm_cnn": Family(groupnorm_cnn, image(32, 64)),
    "style_instancenorm": Family(StyleNet, image(32, 48), classifier=False),
    "espcn_pixelshuffle": Family(ESPCN, image(24, 32, channels=1), classifier=False),
    "yolo_head": Family(YoloHead, image(32, 64), classifier=False),
    "densenet": Family(densenet, image(32, 64)),
    "inception": Family(inception, image(32, 64)),
}
