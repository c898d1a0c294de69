"""Gemm and MatMul with a constant weight -> mcu_fully_connected_s8.

The canonicalize pass rewrites both into Gemm(x[N,K], W[O,K], b[O]) with transB=1, alpha=beta=1.
"""

from __future__ import annotations

import numpy as np

from .. import quant
from ..ir import CompileError, Graph, KernelCall, Node
from .conv import MAX_ACCUMULATION_DEPTH
from .registry import OpDef, is_constant_operand, register, register_kernel


def gemm_reference(node: Node, a: np.ndarray, b: np.ndarray, c: np.ndarray | None = None) -> list[np.ndarray]:
    a = a.T if node.attr("transA", 0) else a
    b = b.T if node.attr("transB", 0) else b
    y = float(node.attr("alpha", 1.0)) * (a.astype(np.float32) @ b.astype(np.float32))
    if c is not None:
        y = y + float(node.attr("beta", 1.0)) * c.astype(np.float32)
    return [y.astype(np.float32)]


def matmul_reference(node: Node, a: np.ndarray, b: np.ndarray) -> list[np.ndarray]:
    return [np.matmul(a.astype(np.float32), b.astype(np.float32))]


def lower_gemm(node: Node, g: Graph) -> list[KernelCall]:
    x, w, y = g.tensors[node.inputs[0]], g.tensors[node.inputs[1]], g.tensors[node.outputs[0]]
    if w.data is None or not node.attr("transB", 0):
        raise CompileError(f"internal: node '{node.name}' (Gemm) was not put in canonical form")
    rows, depth = int(np.prod(x.shape[:-1], dtype=np.int64)), x.shape[-1]  # [.., K] rows are contiguous
    if depth > MAX_ACCUMULATION_DEPTH:
        raise CompileError(f"node '{node.name}' (Gemm): {depth} inputs exceed the int32 accumulator")
    mult, shift = quant.quantize_multipliers(
        np.float64(x.quant.s) * w.quant.scale.astype(np.float64) / np.float64(y.quant.s)
    )
    act_min, act_max = quant.activation_range(node.attr("activation"), y.quant)
    # The input offset in the bias where every partial sum stays in int32 (|raw products| <= 128 * 128 each): the
    # kernel then multiplies raw int8 values, two outputs per pass (SMLAD where available).
    bias, input_offset = g.const(node.inputs[2]), -x.quant.zp
    folded = quant.fold_input_offset(w.data, bias, input_offset, margin=depth * 128 * 128, limit=2**31)
    if folded is not None:
        bias, input_offset = folded, 0
    return [
        KernelCall(
            kernel="mcu_fully_connected_s8",
            template="kernels/fully_connected_s8.c.j2",
            node=node.name,
            params=dict(
                input_offset=input_offset,
                output_offset=y.quant.zp,
                act_min=act_min,
                act_max=act_max,
                rows=int(rows),
                depth=int(depth),
                out_features=int(w.shape[0]),
            ),
            arrays=dict(weights=w.data, bias=bias, multiplier=mult, shift=shift),
            inputs=(node.inputs[0],),
            outputs=node.outputs,
        )
    ]


@register_kernel("mcu_fully_connected_s8")
def fully_connected_s8_reference(call: KernelCall, inputs: list[np.ndarray]) -> np.ndarray:
    p, a = call.params, call.arrays
    x = inputs[0].reshape(p["rows"], p["depth"]).astype(np.int64) + p["input_offset"]
    acc = x @ a["weights"].astype(np.int64).T + a["bias"].astype(np.int64)
    return quant.requantize_to_int8(acc, a["multiplier"], a["shift"], p["output_offset"], p["act_min"], p["act_max"])


def _matmul_needs_canonical_form(node: Node, g: Graph) -> list[KernelCall]:
    raise CompileError(f"internal: node '{node.name}' (MatMul) was not turned into a Gemm")


def check_gemm(node: Node, g: Graph) -> str | None:
    """An input of rank 2 (or 3, for MatMul over a sequence) times a constant 2-D matrix, without transA."""
    x_shape, w = g.tensors[node.inputs[0]].shape, g.tensors[node.inputs[1]]
    if node.attr("transA", 0):
        return "transA=1 is not supported"
    if not is_constant_operand(g, node.inputs[1]) or len(w.shape) != 2:
        return "the second operand must be a constant 2-D matrix (an initializer)"
    if len(x_shape) not in (2, 3):
        return f"input of shape {x_shape} is not supported (rank 2 or 3 only)"
    return None


register(
    OpDef(
        "Gemm",
        reference=gemm_reference,
        weight_axis={1: 0},
        bias_input=2,
        lower=lower_gemm,
        fusable_activation=True,
        check=check_gemm,
    )
)
register(OpDef("MatMul", reference=matmul_reference, lower=_matmul_needs_canonical_form, check=check_gemm))
