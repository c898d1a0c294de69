"""Add, Sub -> mcu_add_s8 (TFLite's rescaling of both inputs); Mul, Div by a constant -> mcu_mul_s8;
Relu and Clip -> mcu_clamp_s8 (in place);
Requantize (a DequantizeLinear -> QuantizeLinear pair with new parameters) -> mcu_requantize_s8.

The binary ops follow ONNX multidirectional broadcasting: the kernels walk the output's physical box with
a per-input element stride for each output axis (0 where the input is broadcast), computed here from the
ONNX shapes through layout.py. Axes that both inputs walk contiguously merge, so same-shape operands are a
single flat loop. A constant operand becomes an int8 array in flash, quantized per tensor from its own range
(or with the scale and zero point a QDQ model gives it), stored in its own physical layout.

The canonicalize pass turns Relu into Clip(min=0) and Clip's min/max inputs into attributes; the
fuse_activation pass folds most of them into the producer, so mcu_clamp_s8 only runs where it cannot.
"""

from __future__ import annotations

import math

import numpy as np

from .. import quant
from ..ir import CompileError, Graph, KernelCall, Node, QuantParams
from ..layout import broadcast_loops, to_physical
from .lut import BINARY
from .registry import OpDef, register, register_kernel

ADD_LEFT_SHIFT = 20  # TFLite's int8 ADD headroom: inputs are scaled up by 2^20 before rescaling

BINARY_OPS = ("Add", "Sub", "Mul", "Div")  # their float functions are lut.BINARY's (one owner)


def binary_reference(node: Node, a: np.ndarray, b: np.ndarray) -> list[np.ndarray]:
    """float32 arithmetic like onnxruntime (constants folded from QDQ are float64 until here)."""
    return [BINARY[node.op](np.asarray(a, np.float32), np.asarray(b, np.float32)).astype(np.float32)]


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


def mul_params(a: QuantParams, b: QuantParams, y: QuantParams) -> dict:
    """TFLite's MUL constants: one multiplier s1 * s2 / s_out, in double from the float32 scales."""
    real = float(np.float64(np.float32(a.s)) * np.float64(np.float32(b.s)) / np.float64(np.float32(y.s)))
    mo, so = quant.quantize_multiplier(real)
    return dict(input1_offset=-a.zp, input2_offset=-b.zp, output_multiplier=mo, output_shift=so, output_offset=y.zp)


def is_folded_constant(g: Graph, name: str) -> bool:
    """A constant, or (before fold_qdq) a DequantizeLinear/QuantizeLinear of one."""
    t = g.tensors.get(name)
    if t is not None and t.data is not None:
        return True
    producer = g.producer(name)
    return producer is not None and producer.op in ("DequantizeLinear", "QuantizeLinear") and is_folded_constant(
        g, producer.inputs[0]
    )


def check_binary(node: Node, g: Graph) -> str | None:
    if len(node.inputs) != 2 or not all(node.inputs):
        return "needs exactly two inputs"
    a, b, y = (g.tensors[t] for t in (*node.inputs, node.outputs[0]))
    try:
        expected = tuple(np.broadcast_shapes(a.shape, b.shape))
    except ValueError:
        return f"shapes {a.shape} and {b.shape} do not broadcast"
    if tuple(y.shape) != expected:
        return f"output shape {y.shape} is not the broadcast of {a.shape} and {b.shape}"
    if is_folded_constant(g, node.inputs[0]) and is_folded_constant(g, node.inputs[1]):
        return "both operands are constants; fold them before compiling (e.g. onnxsim)"
    if node.op == "Div":
        if b.data is not None and np.any(np.asarray(b.data) == 0):
            return "the constant divisor contains 0"
    try:
        broadcast_loops(y.shape, [a.shape, b.shape])
    except ValueError as exc:
        return str(exc)
    return None


def constant_operand(node: Node, index: int, g: Graph) -> tuple[np.ndarray, QuantParams]:
    """A constant operand as int8 in its physical layout, and its per-tensor quantization."""
    t = g.tensors[node.inputs[index]]
    value, given = np.asarray(t.data, np.float64), t.quant
    if node.op == "Div":
        # x / c == x * (1 / c): Div by a constant runs as MUL by the reciprocal, quantized from its own range
        # (a QDQ model's quantization of the divisor says nothing about its reciprocal).
        with np.errstate(divide="ignore"):
            value, given = 1.0 / value, None
    if not np.all(np.isfinite(value)):
        raise CompileError(f"node '{node.name}' ({node.op}): constant operand '{t.name}' is not finite (divided by 0?)")
    if given is not None and given.scale.size != 1:
        raise CompileError(
            f"node '{node.name}' ({node.op}): constant operand '{t.name}' is quantized per channel; "
            "only per-tensor quantization is supported for elementwise operands"
        )
    q = given if given is not None else quant.choose_qparams(float(value.min()), float(value.max()))
    return to_physical(quant.quantize(value, q)), q


def broadcast_operands_of(node: Node, g: Graph, inputs: tuple[str, str]) -> tuple[dict, dict, list, list[int]]:
    """What every two-operand broadcasting kernel call needs: (params with the operand order and the broadcast
    shape, the constant operand's int8 array if any, both operands' quantization, the computed operands' indices
    in call-input order). One with the output's own layout comes first: the memory planner may then write the
    output over it (the kernels read each element before writing it)."""
    y = g.tensors[node.outputs[0]]
    operands = [g.tensors[t] for t in inputs]
    if all(t.data is not None for t in operands):
        raise CompileError(f"node '{node.name}' ({node.op}): both operands are constants; fold them first")
    dims, strides = broadcast_loops(y.shape, [t.shape for t in operands])
    contiguous = tuple(int(np.prod(dims[k + 1 :], dtype=np.int64)) if dims[k] > 1 else 0 for k in range(4))
    full = [tuple(s if d > 1 else 0 for s, d in zip(st, dims)) == contiguous for st in strides]
    tensors = sorted((k for k, t in enumerate(operands) if t.data is None), key=lambda k: not full[k])
    arrays, qs = {}, [t.quant for t in operands]
    for k, t in enumerate(operands):
        if t.data is not None:
            arrays["constant"], qs[k] = constant_operand(node, k, g)
    params = dict(
        operands=tuple(tensors.index(k) if k in tensors else -1 for k in range(2)),
        out_dims=dims,
        in1_strides=strides[0],
        in2_strides=strides[1],
        in_place=int(full[tensors[0]]),
    )
    return params, arrays, qs, tensors


def lower_binary(node: Node, g: Graph) -> list[KernelCall]:
    y = g.tensors[node.outputs[0]]
    if node.op == "Div" and g.tensors[node.inputs[1]].data is None:
        raise CompileError(f"node '{node.name}' (Div): only division by a constant is supported")
    params, arrays, qs, tensors = broadcast_operands_of(node, g, node.inputs[:2])
    params["act_min"], params["act_max"] = quant.activation_range(node.attr("activation"), y.quant)
    if node.op in ("Add", "Sub"):
        params.update(add_params(qs[0], qs[1], y.quant), subtract=int(node.op == "Sub"))
        kernel = "add"
    else:
        params.update(mul_params(qs[0], qs[1], y.quant))
        kernel = "mul"
    return [
        KernelCall(
            f"mcu_{kernel}_s8",
            f"kernels/{kernel}_s8.c.j2",
            node.name,
            params,
            arrays,
            tuple(node.inputs[k] for k in tensors),
            node.outputs,
            overlap_gap=0 if params["in_place"] else None,
        )
    ]


def lower_clip(node: Node, g: Graph) -> list[KernelCall]:
    x = g.tensors[node.inputs[0]]
    act_min, act_max = quant.activation_range(clip_bounds(node), x.quant)  # output shares the input's quantization
    params = dict(act_min=act_min, act_max=act_max, size=x.size)
    return [
        KernelCall(
            "mcu_clamp_s8", "kernels/clamp_s8.c.j2", node.name, params, {}, node.inputs[:1], node.outputs, overlap_gap=0
        )
    ]


def broadcast_gather(src: np.ndarray, dims, strides) -> np.ndarray:
    """The int64 elements of `src` (flat) read at every index of the box `dims` with element `strides`."""
    index = sum(
        np.arange(d).reshape([d if j == axis else 1 for j in range(len(dims))]) * s
        for axis, (d, s) in enumerate(zip(dims, strides))
    )
    return src.astype(np.int64).ravel()[np.broadcast_to(index, dims).ravel()]


def broadcast_operands(call: KernelCall, inputs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Both operands gathered over the output box as int64 (a negative operand index is the constant)."""
    p = call.params
    return tuple(
        broadcast_gather(call.arrays["constant"] if k < 0 else inputs[k], p["out_dims"], strides)
        for k, strides in zip(p["operands"], (p["in1_strides"], p["in2_strides"]))
    )


def rescaled_operands(call: KernelCall, inputs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Both operands over the output box, rescaled to one scale with add_params' constants (mcu_rescale_input)."""
    p, mbqm = call.params, quant.multiply_by_quantized_multiplier
    a, b = broadcast_operands(call, inputs)
    r1 = mbqm((a + p["input1_offset"]) << p["left_shift"], p["input1_multiplier"], p["input1_shift"])
    r2 = mbqm((b + p["input2_offset"]) << p["left_shift"], p["input2_multiplier"], p["input2_shift"])
    return r1, r2


@register_kernel("mcu_add_s8")
def add_s8_reference(call: KernelCall, inputs: list[np.ndarray]) -> np.ndarray:
    p = call.params
    mbqm = quant.multiply_by_quantized_multiplier
    r1, r2 = rescaled_operands(call, inputs)
    total = r1 - r2 if p["subtract"] else r1 + r2  # TFLite Micro's SUB subtracts the rescaled input 2
    out = mbqm(total, p["output_multiplier"], p["output_shift"]) + p["output_offset"]
    return np.clip(out, p["act_min"], p["act_max"]).astype(np.int8)


@register_kernel("mcu_mul_s8")
def mul_s8_reference(call: KernelCall, inputs: list[np.ndarray]) -> np.ndarray:
    p = call.params
    a, b = broadcast_operands(call, inputs)
    product = (a + p["input1_offset"]) * (b + p["input2_offset"])
    out = quant.multiply_by_quantized_multiplier(product, p["output_multiplier"], p["output_shift"])
    return np.clip(out + p["output_offset"], p["act_min"], p["act_max"]).astype(np.int8)


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
            overlap_gap=0,
        )
    ]


def requantize_values(values: np.ndarray, input_offset: int, output_offset: int, multiplier: int, shift: int):
    """int8 values to a new scale and zero point (mcu_requantize_s8_value)."""
    v = quant.multiply_by_quantized_multiplier(np.asarray(values, np.int64) + input_offset, multiplier, shift)
    return np.clip(v + output_offset, -128, 127).astype(np.int8)


@register_kernel("mcu_requantize_s8")
def requantize_s8_reference(call: KernelCall, inputs: list[np.ndarray]) -> np.ndarray:
    p = call.params
    return requantize_values(inputs[0].ravel(), p["input_offset"], p["output_offset"], p["multiplier"], p["shift"])


register(OpDef("Requantize", reference=requantize_reference, lower=lower_requantize))
for _op in BINARY_OPS:
    register(OpDef(_op, reference=binary_reference, lower=lower_binary, fusable_activation=True, check=check_binary))
register(OpDef("Clip", reference=clip_reference, quant="same", lower=lower_clip))
register(OpDef("Relu", reference=relu_reference, quant="same", lower=lower_clip))
