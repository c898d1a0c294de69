"""BatchNormalization (inference): folded into the producing Conv/Gemm, or turned into a depthwise 1x1 Conv
by passes/fold_batchnorm.py, so it never reaches lowering."""

from __future__ import annotations

import numpy as np

from ..ir import Node
from .registry import OpDef, register


def batchnorm_scale_shift(node: Node, gamma, beta, mean, var) -> tuple[np.ndarray, np.ndarray]:
    """y = x * scale + shift per channel, in float64."""
    scale = gamma.astype(np.float64) / np.sqrt(var.astype(np.float64) + float(node.attr("epsilon", 1e-5)))
    return scale, beta.astype(np.float64) - mean.astype(np.float64) * scale


def batchnorm_reference(node: Node, x, gamma, beta, mean, var) -> list[np.ndarray]:
    scale, shift = batchnorm_scale_shift(node, gamma, beta, mean, var)
    shape = (1, -1) + (1,) * (x.ndim - 2)
    return [(x * scale.reshape(shape) + shift.reshape(shape)).astype(np.float32)]


register(OpDef("BatchNormalization", reference=batchnorm_reference))
