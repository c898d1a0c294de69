"""Model statistics for the compile summary: operators, parameters, weight bytes, MACs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .ir import KernelCall
from .lower import Program
from .ops.conv_transpose import conv_transpose_macs


@dataclass(frozen=True)
class ModelStats:
    ops: int  # graph nodes after the passes
    kernels: int  # kernel calls in the generated C
    params: int  # weight and bias elements
    weight_bytes: int  # bytes of every constant array in flash (weights, biases, multipliers, tables)
    macs: int  # multiply-accumulates of one inference


def call_macs(call: KernelCall) -> int:
    p = call.params
    if call.kernel in ("mcu_conv_s8", "mcu_conv_1x1_s8_fast"):
        o, kh, kw, c = p["filter_dims"]
        return int(np.prod(p["out_dims"])) * kh * kw * c
    if call.kernel in ("mcu_depthwise_conv_s8", "mcu_depthwise_conv_3x3_s8_fast"):
        _, kh, kw, _ = p["filter_dims"]
        return int(np.prod(p["out_dims"])) * kh * kw
    if call.kernel == "mcu_conv_transpose_s8":
        return conv_transpose_macs(p)
    if call.kernel == "mcu_fully_connected_s8":
        return p["rows"] * p["depth"] * p["out_features"]
    return 0


def model_stats(program: Program) -> ModelStats:
    params = sum(
        int(a.size) for c in program.calls for k, a in c.arrays.items() if k in ("weights", "bias") and a is not None
    )
    weight_bytes = sum(int(a.nbytes) for c in program.calls for a in c.arrays.values() if a is not None)
    return ModelStats(
        ops=len(program.graph.nodes),
        kernels=len(program.calls),
        params=params,
        weight_bytes=weight_bytes,
        macs=sum(call_macs(c) for c in program.calls),
    )
