"""Pointwise functions of one int8 tensor -> a 256-entry lookup table (mcu_lut_s8).

An int8 input takes only 256 values, so any pointwise function of it is a table computed at compile time:
the exact float function of each dequantized input value, rounded once to the output's quantization. Every
unary activation (Sigmoid, Tanh, HardSwish, Gelu, ...) lowers this way, and the fuse_pointwise pass merges a
whole single-input chain (x * sigmoid(x), x * hardsigmoid(x), Gelu's erf formula, x / 6 + 0.5) into one
"PointwiseLut" node, so no intermediate value is rounded to int8.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from .. import quant
from ..ir import CompileError, Graph, KernelCall, Node
from .registry import OpDef, register, register_kernel

_erf = np.vectorize(math.erf, otypes=[np.float64])


def _softplus(x):
    return np.logaddexp(0.0, x)


def _hard_sigmoid(node: Node, x):
    return np.clip(float(node.attr("alpha", 0.2)) * x + float(node.attr("beta", 0.5)), 0.0, 1.0)


def _elu(x, alpha):
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0.0)))


SELU_ALPHA, SELU_GAMMA = 1.6732632423543772, 1.0507009873554805  # ONNX's defaults


def _celu(node: Node, x):
    alpha = float(node.attr("alpha", 1.0))
    return np.maximum(x, 0.0) + np.minimum(0.0, alpha * np.expm1(x / alpha))


def _gelu(node: Node, x):
    approximate = node.attr("approximate", "none")
    if (approximate.decode() if isinstance(approximate, bytes) else approximate) == "tanh":
        return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


# ONNX unary ops, evaluated in float64 (node, x) -> y. Domain errors give NaN/inf; the table maps them below.
UNARY: dict[str, Callable[[Node, np.ndarray], np.ndarray]] = {
    "Sigmoid": lambda n, x: 0.5 * (1.0 + np.tanh(0.5 * x)),  # = 1 / (1 + exp(-x)) without overflow
    "HardSigmoid": _hard_sigmoid,
    "HardSwish": lambda n, x: x * np.clip(x / 6.0 + 0.5, 0.0, 1.0),
    "Tanh": lambda n, x: np.tanh(x),
    "LeakyRelu": lambda n, x: np.where(x >= 0, x, float(n.attr("alpha", 0.01)) * x),
    "Elu": lambda n, x: _elu(x, float(n.attr("alpha", 1.0))),
    "Selu": lambda n, x: float(n.attr("gamma", SELU_GAMMA)) * _elu(x, float(n.attr("alpha", SELU_ALPHA))),
    "Celu": _celu,
    "ThresholdedRelu": lambda n, x: np.where(x > float(n.attr("alpha", 1.0)), x, 0.0),
    "Softplus": lambda n, x: _softplus(x),
    "Softsign": lambda n, x: x / (1.0 + np.abs(x)),
    "Mish": lambda n, x: x * np.tanh(_softplus(x)),
    "Gelu": _gelu,
    "Erf": lambda n, x: _erf(x),
    "Exp": lambda n, x: np.exp(x),
    "Log": lambda n, x: np.log(x),
    "Sqrt": lambda n, x: np.sqrt(x),
    "Reciprocal": lambda n, x: 1.0 / x,
    "Neg": lambda n, x: -x,
    "Abs": lambda n, x: np.abs(x),
    "Floor": lambda n, x: np.floor(x),
    "Ceil": lambda n, x: np.ceil(x),
    "Round": lambda n, x: np.round(x),  # half to even, as ONNX says
    "Sin": lambda n, x: np.sin(x),
    "Cos": lambda n, x: np.cos(x),
    "Sign": lambda n, x: np.sign(x),
    "Shrink": lambda n, x: _shrink(n, x),
    # Logic inside a chain: booleans are the values 0 and 1 (ONNX's Cast of a bool), anything non-zero is true.
    "Not": lambda n, x: (x == 0).astype(np.float64),
    "Cast": lambda n, x: _cast(n, x),
}


def _shrink(node: Node, x):
    lambd, bias = float(node.attr("lambd", 0.5)), float(node.attr("bias", 0.0))
    return np.where(x < -lambd, x + bias, np.where(x > lambd, x - bias, 0.0))


def _cast(node: Node, x):
    """Cast within a chain: to bool -> 0/1, to an integer type -> truncated (saturation aside), to float: as is."""
    to = int(node.attr("to", 1))
    if to == 9:  # BOOL
        return (x != 0).astype(np.float64)
    if to in (2, 3, 4, 5, 6, 7, 12, 13):  # the integer types
        return np.trunc(x)
    return x


def _truth(v):
    return np.asarray(v) != 0

# Binary ops that join a pointwise chain when every operand is the chain's value or a scalar constant.
BINARY: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "Add": np.add,
    "Sub": np.subtract,
    "Mul": np.multiply,
    "Div": np.divide,
    "Pow": np.power,
    "Max": np.maximum,
    "Min": np.minimum,
    "PRelu": lambda x, slope: np.where(x >= 0, x, slope * x),
    "Greater": lambda a, b: np.greater(a, b).astype(np.float64),
    "Less": lambda a, b: np.less(a, b).astype(np.float64),
    "GreaterOrEqual": lambda a, b: np.greater_equal(a, b).astype(np.float64),
    "LessOrEqual": lambda a, b: np.less_equal(a, b).astype(np.float64),
    "Equal": lambda a, b: np.equal(a, b).astype(np.float64),
    "And": lambda a, b: (_truth(a) & _truth(b)).astype(np.float64),
    "Or": lambda a, b: (_truth(a) | _truth(b)).astype(np.float64),
    "Xor": lambda a, b: (_truth(a) ^ _truth(b)).astype(np.float64),
}

# Where(condition, a, b): a pointwise choice when all three are the chain's value or scalar constants.
TERNARY: dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]] = {
    "Where": lambda c, a, b: np.where(_truth(c), a, b),
}
# Ops that only compile as part of such a chain (a single tensor's function): Pow and Xor of two tensors have no
# kernel; Not and Cast of one tensor always are one. Max, Min, comparisons, And, Or and Where of several tensors
# are ops/select.py's.
CHAIN_ONLY = frozenset({"Pow", "Xor", "Not", "Cast"})


def pointwise(node: Node, args: list[np.ndarray]) -> np.ndarray:
    """The float64 value of one pointwise node (UNARY, BINARY or Clip), its fused activation applied."""
    with np.errstate(all="ignore"):
        if node.op in UNARY:
            y = UNARY[node.op](node, args[0])
        elif node.op in BINARY:
            y = BINARY[node.op](args[0], args[1])
        elif node.op in TERNARY:
            y = TERNARY[node.op](*args[:3])
        elif node.op == "Clip":
            y = np.clip(args[0], float(node.attr("min", -math.inf)), float(node.attr("max", math.inf)))
        else:
            raise CompileError(f"internal: node '{node.name}' ({node.op}) is not pointwise")
        clamp = node.attr("activation")
        return np.clip(y, *clamp) if clamp else y


def is_pointwise(op: str) -> bool:
    return op in UNARY or op in BINARY or op in TERNARY or op == "Clip"


def chain_value(node: Node, x: np.ndarray) -> np.ndarray:
    """A PointwiseLut node's float64 function of its input: its body evaluated in order."""
    values = {node.inputs[0]: np.asarray(x, np.float64), **node.attr("constants")}
    for n in node.attr("body"):
        values[n.outputs[0]] = pointwise(n, [values[t] for t in n.inputs])
    return values[node.outputs[0]]


def _unary_reference(node: Node, x: np.ndarray) -> list[np.ndarray]:
    return [pointwise(node, [np.asarray(x, np.float64)]).astype(np.float32)]


def _chain_reference(node: Node, x: np.ndarray) -> list[np.ndarray]:
    return [chain_value(node, x).astype(np.float32)]


def _lower_lut(node: Node, g: Graph) -> list[KernelCall]:
    x, y = g.tensors[node.inputs[0]], g.tensors[node.outputs[0]]
    levels = np.arange(quant.INT8_MIN, quant.INT8_MAX + 1)
    real = quant.dequantize(levels, x.quant).astype(np.float64)
    with np.errstate(all="ignore"):
        value = chain_value(node, real) if node.op == "PointwiseLut" else pointwise(node, [real])
    # NaN (e.g. log of a negative) has no int8 value: it maps to real 0 so the table stays deterministic;
    # +-inf saturate like any out-of-range value.
    value = np.where(np.isnan(value), 0.0, value)
    table = np.clip(quant.round_half_away(value / np.float64(y.quant.s)) + y.quant.zp, quant.INT8_MIN, quant.INT8_MAX)
    params = dict(size=x.size)
    return [
        KernelCall(
            "mcu_lut_s8",
            "kernels/lut_s8.c.j2",
            node.name,
            params,
            dict(table=table.astype(np.int8)),
            node.inputs[:1],
            node.outputs,
            overlap_gap=0,
        )
    ]


def _lower_chain_only(node: Node, g: Graph) -> list[KernelCall]:
    raise CompileError(f"internal: node '{node.name}' ({node.op}) should have been fused into a lookup table")


def check_chain_only(node: Node, g: Graph) -> str | None:
    """Reached only for a node outside every fusable chain (support.py lets the chains' nodes through)."""
    return ("supported only as part of a function of a single tensor (with scalar constants), which becomes a "
            "lookup table; its operands here are several computed tensors")  # fmt: skip


@register_kernel("mcu_lut_s8")
def lut_s8_reference(call: KernelCall, inputs: list[np.ndarray]) -> np.ndarray:
    return call.arrays["table"][inputs[0].astype(np.int64).ravel() - quant.INT8_MIN]


for _op in UNARY:
    chain_only = _op in CHAIN_ONLY
    register(OpDef(_op, reference=_unary_reference, lower=_lower_chain_only if chain_only else _lower_lut,
                   check=check_chain_only if chain_only else None))  # fmt: skip
register(OpDef("PointwiseLut", reference=_chain_reference, lower=_lower_lut))
for _op in sorted(CHAIN_ONLY - set(UNARY)):  # the other BINARY ops are elementwise.py's, prelu.py's, select.py's
    register(OpDef(_op, reference=lambda n, *args: [pointwise(n, list(args)).astype(np.float32)],
                   lower=_lower_chain_only, check=check_chain_only))  # fmt: skip
