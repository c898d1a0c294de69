"""Building blocks of the network zoo (tests/zoo.py): activations by name, Conv + BatchNorm + activation, the
classifier head, channel shuffle, and the Family record."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

NUM_CLASSES = 10


def activation(kind: str | None) -> nn.Module:
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
        nn.Conv2d(cin, cout, k, stride, pad, groups=groups, bias=False), nn.BatchNorm2d(cout), activation(act)
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


def channel_shuffle(x, groups: int):
    n, c, h, w = x.size()
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).contiguous().view(n, c, h, w)


@dataclass(frozen=True)
class Family:
    build: object  # () -> nn.Module
    shapes: dict  # size name -> input shape (with the batch of 1)
    classifier: bool = True


def image(*sizes: int, channels: int = 3) -> dict:
    return {s: (1, channels, s, s) for s in sizes}

