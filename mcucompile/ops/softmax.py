"""Softmax over the last axis -> mcu_softmax_s8.

The output uses TFLite's fixed quantization (scale 1/256, zero point -128). exp(-s_in * d) for the 256
possible distances d = max - x is a Q16 table computed here, so the C side only adds and divides.
"""

from __future__ import annotations

import numpy as np

from ..ir import CompileError, Graph, KernelCall, Node
from ..layout import kernel_dims
from .registry import OpDef, register, register_kernel

EXP_TABLE_BITS = 16
MAX_SOFTMAX_DEPTH = (2**31 - 1) >> (EXP_TABLE_BITS + 1)  # the int32 row sum of table values must not overflow


def softmax_reference(node: Node, x: np.ndarray) -> list[np.ndarray]:
    axis = int(node.attr("axis", -1))
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return [(e / e.sum(axis=axis, keepdims=True)).astype(np.float32)]


def lower_softmax(node: Node, g: Graph) -> list[KernelCall]:
    x = g.tensors[node.inputs[0]]
    axis = int(node.attr("axis", -1)) % len(x.shape)
    if axis != len(x.shape) - 1 or len(x.shape) == 4:
        raise CompileError(
            f"node '{node.name}' (Softmax): only the last axis of a tensor of rank < 4 is supported, "
            f"got axis {axis} of shape {x.shape}"
        )
    rows, _, _, depth = kernel_dims(x.shape)
    if depth > MAX_SOFTMAX_DEPTH:
        raise CompileError(f"node '{node.name}' (Softmax): depth {depth} exceeds {MAX_SOFTMAX_DEPTH}")
    distances = np.arange(256, dtype=np.float64)
    table = np.floor(np.exp(-distances * x.quant.s) * (1 << EXP_TABLE_BITS) + 0.5).astype(np.int32)
    return [
        KernelCall(
            "mcu_softmax_s8",
            "kernels/softmax_s8.c.j2",
            node.name,
            dict(rows=int(rows), depth=int(depth)),
            dict(exp_table=table),
            node.inputs[:1],
            node.outputs,
        )
    ]


@register_kernel("mcu_softmax_s8")
def softmax_s8_reference(call: KernelCall, inputs: list[np.ndarray]) -> np.ndarray:
    p = call.params
    x = inputs[0].reshape(p["rows"], p["depth"]).astype(np.int64)
    e = call.arrays["exp_table"].astype(np.int64)[x.max(axis=1, keepdims=True) - x]
    total = e.sum(axis=1, keepdims=True)
    y = ((e << 8) + total // 2) // total - 128  # all terms are positive: // is C's division
    return np.clip(y, -128, 127).astype(np.int8)


register(OpDef("Softmax", reference=softmax_reference, quant="softmax", lower=lower_softmax))
