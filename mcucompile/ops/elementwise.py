"""Add -> mcu_add_s8 (TFLite's rescaling of both inputs); Relu and Clip -> mcu_clamp_s8 (in place);
Requantize (a DequantizeLinear -> QuantizeLinear pair with new parameters) -> mcu_requantize_s8.

The canonicalize pass turns Relu into Clip(min=0) and Clip's min/max inputs into attributes; the
fuse_activation pass folds most of them into the producer, so mcu_clamp_s8 only runs where it cannot.
"""

from __future__ import annotations

import math

import numpy as np

from .. import quant
from ..ir import CompileError, Graph, KernelCall, Node, QuantParams
from .registry import OpDef, register, register_kernel

ADD_LEFT_SHIFT = 20  # TFLite's int8 ADD headroom: inputs are scaled up by 2^20 before rescaling


def add_reference(node: Node, a: np.ndarray, b: np.ndarray) -> list[np.ndarray]:
    return [(a.astype(np.float32) + b.astype(np.float32)).astype(np.float32)]


def clip_bounds(node: Node) -> tuple[float, float]:
    if node.op == "Relu":
        return 0.0, math.inf
    return float(node.attr("min", -math.inf)), float(node.attr("max", math.inf))


def clip_reference(node: Node, x: np.ndarray, *_bounds: np.ndarray) -> list[np.ndarray]:
    lo, hi = clip_bounds(node)
    if len(_bounds) > 0 and _bounds[0] is not None:
        lo = float(_bounds[0])
    if len(_bounds) > 1 and _bounds[1] is not None:
        hi = float(_bounds[1])
    return [np.clip(x, lo, hi).astype(np.float32)]


def relu_reference(node: Node, x: np.ndarray) -> list[np.ndarray]:
    return [np.maximum(x, 0).astype(np.float32)]


def add_params(a: QuantParams, b: QuantParams, y: QuantParams) -> dict:
    """TFLite's ADD constants: both inputs rescaled to twice the larger scale, with 2^20 of headroom."""
    twice_max = 2.0 * max(a.s, b.s)  # float32 scales widened to double, as in TFLite's add_common
    m1, s1 = quant.quantize_multiplier(a.s / twice_max)
    m2, s2 = quant.quantize_multiplier(b.s / twice_max)
    mo, so = quant.quantize_multiplier(twice_max / ((1 << ADD_LEFT_SHIFT) * y.s))
    return dict(
        input1_offset=-a.zp,
        input2_offset=-b.zp,
        left_shift=ADD_LEFT_SHIFT,
        input1_multiplier=m1,
        input1_shift=s1,
        input2_multiplier=m2,
        input2_shift=s2,
        output_multiplier=mo,
        output_shift=so,
        output_offset=y.zp,
    )


def lower_add(node: Node, g: Graph) -> list[KernelCall]:
    a, b, y = (g.tensors[t] for t in (*node.inputs[:2], node.outputs[0]))
    if a.shape != b.shape or a.data is not None or b.data is not None:
        raise CompileError(
            f"node '{node.name}' (Add): only the sum of two computed tensors of the same shape is supported, "
            f"got {a.shape} + {b.shape}"
        )
    act_min, act_max = quant.activation_range(node.attr("activation"), y.quant)
    params = dict(add_params(a.quant, b.quant, y.quant), act_min=act_min, act_max=act_max, size=a.size)
    return [KernelCall("mcu_add_s8", "kernels/add_s8.c.j2", node.name, params, {}, node.inputs[:2], node.outputs)]


def lower_clip(node: Node, g: Graph) -> list[KernelCall]:
    x = g.tensors[node.inputs[0]]
    act_min, act_max = quant.activation_range(clip_bounds(node), x.quant)  # output shares the input's quantization
    params = dict(act_min=act_min, act_max=act_max, size=x.size)
    return [
        KernelCall(
            "mcu_clamp_s8", "kernels/clamp_s8.c.j2", node.name, params, {}, node.inputs[:1], node.outputs, in_place=True
        )
    ]


@register_kernel("mcu_add_s8")
def add_s8_reference(call: KernelCall, inputs: list[np.ndarray]) -> np.ndarray:
    p = call.params
    mbqm = quant.multiply_by_quantized_multiplier
    v1 = (inputs[0].astype(np.int64).ravel() + p["input1_offset"]) << p["left_shift"]
    v2 = (inputs[1].astype(np.int64).ravel() + p["input2_offset"]) << p["left_shift"]
    total = mbqm(v1, p["input1_multiplier"], p["input1_shift"]) + mbqm(v2, p["input2_multiplier"], p["input2_shift"])
    out = mbqm(total, p["output_multiplier"], p["output_shift"]) + p["output_offset"]
    return np.clip(out, p["act_min"], p["act_max"]).astype(np.int8)


@register_kernel("mcu_clamp_s8")
def clamp_s8_reference(call: KernelCall, inputs: list[np.ndarray]) -> np.ndarray:
    return np.clip(inputs[0].ravel(), call.params["act_min"], call.params["act_max"]).astype(np.int8)


def requantize_reference(node: Node, x: np.ndarray) -> list[np.ndarray]:
    return [np.asarray(x, np.float32)]  # in float the pair is the identity; only the int8 grid changes


def lower_requantize(node: Node, g: Graph) -> list[KernelCall]:
    x, y = g.tensors[node.inputs[0]], g.tensors[node.outputs[0]]
    mult, shift = quant.quantize_multiplier(x.quant.s / y.quant.s)  # TFLite's Requantize, double of float32 scales
    params = dict(input_offset=-x.quant.zp, output_offset=y.quant.zp, multiplier=mult, shift=shift, size=x.size)
    return [
        KernelCall(
            "mcu_requantize_s8",
            "kernels/requantize_s8.c.j2",
            node.name,
            params,
            {},
            node.inputs[:1],
            node.outputs,
            in_place=True,
        )
    ]


@register_kernel("mcu_requantize_s8")
def requantize_s8_reference(call: KernelCall, inputs: list[np.ndarray]) -> np.ndarray:
    p = call.params
    v = quant.multiply_by_quantized_multiplier(
        inputs[0].astype(np.int64).ravel() + p["input_offset"], p["multiplier"], p["shift"]
    )
    return np.clip(v + p["output_offset"], -128, 127).astype(np.int8)


register(OpDef("Requantize", reference=requantize_reference, lower=lower_requantize))
register(OpDef("Add", reference=add_reference, lower=lower_add, fusable_activation=True))
register(OpDef("Clip", reference=clip_reference, quant="same", lower=lower_clip))
register(OpDef("Relu", reference=relu_reference, quant="same", lower=lower_clip))
