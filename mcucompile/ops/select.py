"""Max, Min, comparisons, And/Or and Where of several computed tensors -> mcu_compare_s8 and mcu_where_s8.

A function of one tensor (with scalar constants) becomes a lookup table (ops/lut.py); this module takes the
rest: torch.maximum(a, b), a > b, mask & mask, torch.where(mask, a, b) on computed tensors or constant arrays.

Bool tensors are int8 masks holding 0 or 1, quantized with scale 1 and zero point 0 (BOOL_QUANT), so a lookup
table, a Cast to float or a view reads them as any int8 tensor. Max, Min and the comparisons rescale both
inputs to one scale as TFLite's ADD does; a comparison then writes 1 or 0, Max/Min requantize the chosen
value. And and Or of two masks are Min and Max. Where requantizes the chosen value to the output; a constant
branch is stored already on the output's grid.
"""

from __future__ import annotations

import numpy as np

from .. import quant
from ..ir import CompileError, Graph, KernelCall, Node, QuantParams
from ..layout import broadcast_loops, to_physical
from .elementwise import (
    add_params,
    broadcast_gather,
    broadcast_operands_of,
    check_binary,
    requantize_values,
    rescaled_operands,
)
from .lut import pointwise
from .registry import OpDef, register, register_kernel

BOOL_QUANT = QuantParams.per_tensor(1.0, 0)  # a mask: 0 or 1, exactly

COMPARE_CODES = {"Max": 0, "Min": 1, "Or": 0, "And": 1, "Greater": 2, "GreaterOrEqual": 3, "Equal": 4}
PICKS = (0, 1)  # the codes that requantize a value rather than write a mask
SWAPPED = {"Less": "Greater", "LessOrEqual": "GreaterOrEqual"}  # a < b is b > a
COMPARE_OPS = (*COMPARE_CODES, *SWAPPED)
SELECT_OPS = (*COMPARE_OPS, "Where")


def _reference(node: Node, *args: np.ndarray) -> list[np.ndarray]:
    return [pointwise(node, [np.asarray(a, np.float64) for a in args]).astype(np.float32)]


def lower_compare(node: Node, g: Graph) -> list[KernelCall]:
    op, inputs = (SWAPPED[node.op], node.inputs[1::-1]) if node.op in SWAPPED else (node.op, node.inputs[:2])
    y = g.tensors[node.outputs[0]]
    params, arrays, qs, tensors = broadcast_operands_of(node, g, inputs)
    params.update(add_params(qs[0], qs[1], y.quant), op=COMPARE_CODES[op], subtract=0)
    params["act_min"], params["act_max"] = quant.activation_range(node.attr("activation"), y.quant)
    return [
        KernelCall(
            "mcu_compare_s8",
            "kernels/compare_s8.c.j2",
            node.name,
            params,
            arrays,
            tuple(inputs[k] for k in tensors),
            node.outputs,
            overlap_gap=0 if params["in_place"] else None,
        )
    ]


@register_kernel("mcu_compare_s8")
def compare_s8_reference(call: KernelCall, inputs: list[np.ndarray]) -> np.ndarray:
    p, mbqm = call.params, quant.multiply_by_quantized_multiplier
    ra, rb = rescaled_operands(call, inputs)
    if p["op"] in PICKS:
        chosen = np.maximum(ra, rb) if p["op"] == 0 else np.minimum(ra, rb)
        out = mbqm(chosen, p["output_multiplier"], p["output_shift"]) + p["output_offset"]
        return np.clip(out, p["act_min"], p["act_max"]).astype(np.int8)
    return {2: ra > rb, 3: ra >= rb, 4: ra == rb}[p["op"]].astype(np.int8)


BRANCHES = ("condition", "when_true", "when_false")


def check_where(node: Node, g: Graph) -> str | None:
    if len(node.inputs) != 3 or not all(node.inputs):
        return "needs exactly three inputs"
    shapes = [g.tensors[t].shape for t in node.inputs]
    try:
        expected = tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        return f"shapes {', '.join(map(str, shapes))} do not broadcast"
    y = g.tensors[node.outputs[0]]
    if tuple(y.shape) != expected:
        return f"output shape {y.shape} is not the broadcast of {', '.join(map(str, shapes))}"
    try:
        for branch in shapes[1:]:
            broadcast_loops(y.shape, [shapes[0], branch])
    except ValueError as exc:
        return str(exc)
    return None


def lower_where(node: Node, g: Graph) -> list[KernelCall]:
    c, *branches = (g.tensors[t] for t in node.inputs)
    y = g.tensors[node.outputs[0]]
    if all(t.data is not None for t in (c, *branches)):
        raise CompileError(f"node '{node.name}' (Where): all operands are constants; fold them first")
    computed = [t.name for t in (c, *branches) if t.data is None]
    operands, arrays = [], {}
    for role, t in zip(BRANCHES, (c, *branches)):
        operands.append(computed.index(t.name) if t.data is None else -1)
        if t.data is not None:  # a constant mask as 0/1, a constant branch straight on the output's grid
            q = BOOL_QUANT if role == "condition" else y.quant
            arrays[role] = to_physical(quant.quantize(np.asarray(t.data, np.float64), q))
    params = dict(operands=tuple(operands))
    for role, t in zip(BRANCHES[1:], branches):
        dims, (cond_strides, value_strides) = broadcast_loops(y.shape, [c.shape, t.shape])
        q = y.quant if t.data is not None else t.quant  # a constant is already on the output's grid
        multiplier, shift = quant.quantize_multiplier(q.s / y.quant.s)
        params[role] = {"dims": dims, "cond_strides": cond_strides, "value_strides": value_strides,
                        "input_offset": -q.zp, "output_offset": y.quant.zp, "multiplier": multiplier, "shift": shift}
    return [KernelCall("mcu_where_s8", "kernels/where_s8.c.j2", node.name, params, arrays, tuple(computed),
                       node.outputs)]  # fmt: skip


@register_kernel("mcu_where_s8")
def where_s8_reference(call: KernelCall, inputs: list[np.ndarray]) -> np.ndarray:
    p = call.params

    def operand(role: str) -> np.ndarray:
        k = p["operands"][BRANCHES.index(role)]
        return call.arrays[role] if k < 0 else inputs[k]

    chosen = []
    for role in BRANCHES[1:]:
        r = p[role]
        condition = broadcast_gather(operand("condition"), r["dims"], r["cond_strides"])
        values = broadcast_gather(operand(role), r["dims"], r["value_strides"])
        requantized = requantize_values(values, r["input_offset"], r["output_offset"], r["multiplier"], r["shift"])
        chosen.append((condition != 0, requantized))
    (condition, when_true), (_, when_false) = chosen
    return np.where(condition, when_true, when_false).astype(np.int8)


for _op in COMPARE_OPS:  # Max and Min take a following ReLU as their clamp
    register(OpDef(_op, reference=_reference, lower=lower_compare, check=check_binary,
                   fusable_activation=_op in ("Max", "Min")))
register(OpDef("Where", reference=_reference, lower=lower_where, check=check_where))
