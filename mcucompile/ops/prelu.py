"""PRelu with a tensor slope (per channel, as PyTorch's nn.PReLU(C) exports it) -> mcu_prelu_s8, TFLite's int8 PRELU.

A scalar slope never gets here: fuse_pointwise makes it a lookup table (ops/lut.py), which is exact.
A tensor slope is an int8 constant with its own per-tensor scale and zero point (from its range, or as a QDQ
model gives it), broadcast over the input with the binary ops' loops (ONNX's unidirectional broadcasting).
With x = q_in - zp_in, as TFLite Micro's PRELU (prelu_common.cc, reference_ops::BroadcastPrelu4DSlow):
    x >= 0:  MultiplyByQuantizedMultiplier(x, s_in / s_out) + zp_out
    x <  0:  MultiplyByQuantizedMultiplier(x * (q_alpha - zp_alpha), s_in * s_alpha / s_out) + zp_out
saturated to int8 (double rounding; multipliers in double from the float32 scales).
"""

from __future__ import annotations

import numpy as np

from .. import quant
from ..ir import Graph, KernelCall, Node, QuantParams
from ..layout import broadcast_loops
from .elementwise import broadcast_operands, constant_operand, is_folded_constant
from .lut import pointwise
from .registry import OpDef, register, register_kernel


def prelu_reference(node: Node, x: np.ndarray, slope: np.ndarray) -> list[np.ndarray]:
    return [pointwise(node, [x, slope]).astype(np.float32)]


def prelu_params(x: QuantParams, alpha: QuantParams, y: QuantParams) -> dict:
    s_in, s_alpha, s_out = (np.float64(np.float32(q.s)) for q in (x, alpha, y))
    m1, sh1 = quant.quantize_multiplier(float(s_in / s_out))
    m2, sh2 = quant.quantize_multiplier(float(s_in * s_alpha / s_out))
    return dict(
        input_offset=-x.zp,
        alpha_offset=-alpha.zp,
        output_offset=y.zp,
        identity_multiplier=m1,
        identity_shift=sh1,
        alpha_multiplier=m2,
        alpha_shift=sh2,
    )


def check_prelu(node: Node, g: Graph) -> str | None:
    if len(node.inputs) != 2 or not all(node.inputs):
        return "needs exactly two inputs (x, slope)"
    x, slope = (g.tensors[t].shape for t in node.inputs)
    if not is_folded_constant(g, node.inputs[1]):
        return "the slope must be a constant"
    if int(np.prod(slope, dtype=np.int64)) == 1:
        return None  # a lookup table
    try:
        fits = tuple(np.broadcast_shapes(x, slope)) == tuple(x)
    except ValueError:
        fits = False
    if not fits:
        return f"slope of shape {slope} does not broadcast to the input shape {x} (e.g. [C,1,1] per channel)"
    try:
        broadcast_loops(x, [x, slope])
    except ValueError as exc:
        return str(exc)
    return None


def lower_prelu(node: Node, g: Graph) -> list[KernelCall]:
    x, slope, y = (g.tensors[t] for t in (*node.inputs[:2], node.outputs[0]))
    alpha, alpha_q = constant_operand(node, 1, g)
    dims, strides = broadcast_loops(y.shape, [x.shape, slope.shape])
    params = dict(
        prelu_params(x.quant, alpha_q, y.quant),
        operands=(0, -1),  # input 1 the tensor, input 2 the flash constant (as broadcast_operands reads them)
        out_dims=dims,
        in1_strides=strides[0],
        in2_strides=strides[1],
    )
    return [
        KernelCall(
            "mcu_prelu_s8",
            "kernels/prelu_s8.c.j2",
            node.name,
            params,
            dict(constant=alpha),
            node.inputs[:1],
            node.outputs,
            overlap_gap=0,  # the input has the output's shape and layout: read before written
        )
    ]


@register_kernel("mcu_prelu_s8")
def prelu_s8_reference(call: KernelCall, inputs: list[np.ndarray]) -> np.ndarray:
    p = call.params
    mbqm = quant.multiply_by_quantized_multiplier
    x, alpha = broadcast_operands(call, inputs)
    v = x + p["input_offset"]
    identity = mbqm(v, p["identity_multiplier"], p["identity_shift"])
    scaled = mbqm(v * (alpha + p["alpha_offset"]), p["alpha_multiplier"], p["alpha_shift"])
    return np.clip(np.where(v >= 0, identity, scaled) + p["output_offset"], -128, 127).astype(np.int8)


register(OpDef("PRelu", reference=prelu_reference, lower=lower_prelu, check=check_prelu))
