"""Softmax over the innermost axis in memory -> mcu_softmax_s8, TFLite's int8 algorithm bit for bit.

The output uses TFLite's fixed quantization (scale 1/256, zero point -128). Differences to the row maximum are
scaled to Q5.26 and exponentiated with gemmlowp's fixed-point exp_on_negative_values; their Q12.19 sum is
inverted with a Newton-Raphson reciprocal. The numpy functions here are the spec of the C kernel.
"""

from __future__ import annotations

import math

import numpy as np

from .. import quant
from ..ir import CompileError, Graph, KernelCall, Node
from ..layout import MAX_RANK, kernel_dims, storage_perm
from .registry import OpDef, register, register_kernel

SCALED_DIFF_INTEGER_BITS = 5
ACCUMULATION_INTEGER_BITS = 12
INT32_MAX, INT32_MIN = quant.INT32_MAX, quant.INT32_MIN
srdhm = quant.saturating_rounding_doubling_high_mul
rdbp = quant.rounding_divide_by_pot

# exp(-2^k) in Q0.31 for the bits of the input above a quarter (gemmlowp's barrel shifter), k = -2 .. 4.
EXP_OF_POWERS_OF_TWO = (
    (24, 1672461947),
    (25, 1302514674),
    (26, 790015084),
    (27, 290630308),
    (28, 39332535),
    (29, 720401),
    (30, 242),
)


def softmax_reference(node: Node, x: np.ndarray) -> list[np.ndarray]:
    axis = int(node.attr("axis", -1))
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return [(e / e.sum(axis=axis, keepdims=True)).astype(np.float32)]


def log_softmax_reference(node: Node, x: np.ndarray) -> list[np.ndarray]:
    axis = int(node.attr("axis", -1))
    shifted = x - x.max(axis=axis, keepdims=True)
    return [(shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))).astype(np.float32)]


def softmax_params(input_scale: float, beta: float = 1.0) -> tuple[int, int, int]:
    """(input multiplier, left shift, diff_min) as TFLite's PreprocessSoftmaxScaling and CalculateInputRadius."""
    real = min(beta * float(np.float32(input_scale)) * (1 << (31 - SCALED_DIFF_INTEGER_BITS)), (1 << 31) - 1.0)
    multiplier, left_shift = quant.quantize_multiplier(real)
    if left_shift < 0:
        raise CompileError(f"softmax input scale {input_scale} is too small for TFLite's int8 softmax")
    radius = ((1 << SCALED_DIFF_INTEGER_BITS) - 1) * (1 << (31 - SCALED_DIFF_INTEGER_BITS)) / (1 << left_shift)
    return multiplier, left_shift, -int(math.floor(radius))


def saturating_left_shift(x: np.ndarray, exponent: int) -> np.ndarray:
    threshold = (1 << (31 - exponent)) - 1
    x = np.asarray(x, np.int64)
    return np.where(x > threshold, INT32_MAX, np.where(x < -threshold, INT32_MIN, x << exponent))


def exp_on_interval_between_negative_one_quarter_and_0_excl(a: np.ndarray) -> np.ndarray:
    """exp(a) for a in [-1/4, 0), Q0.31: a 4th-order Taylor expansion around -1/8."""
    constant_term, one_third = 1895147668, 715827883
    x = a + (1 << 28)
    x2 = srdhm(x, x)
    x3 = srdhm(x2, x)
    x4 = srdhm(x2, x2)
    poly = rdbp(srdhm(rdbp(x4, 2) + x3, one_third) + x2, 1)
    return constant_term + srdhm(constant_term, x + poly)


def exp_on_negative_values(a: np.ndarray) -> np.ndarray:
    """exp(a) for a <= 0 given in Q5.26; result Q0.31."""
    quarter = 1 << (31 - SCALED_DIFF_INTEGER_BITS - 2)
    a = np.asarray(a, np.int64)
    a_mod_quarter_minus_quarter = (a & (quarter - 1)) - quarter
    result = exp_on_interval_between_negative_one_quarter_and_0_excl(
        saturating_left_shift(a_mod_quarter_minus_quarter, SCALED_DIFF_INTEGER_BITS)
    )
    remainder = a_mod_quarter_minus_quarter - a
    for bit, multiplier in EXP_OF_POWERS_OF_TWO:
        result = np.where(remainder & (1 << bit), srdhm(result, multiplier), result)
    return np.where(a == 0, INT32_MAX, result)


def one_over_one_plus_x_for_x_in_0_1(a: np.ndarray) -> np.ndarray:
    """1 / (1 + a) for a in [0, 1) in Q0.31, by three Newton-Raphson steps in Q2.29."""
    total = np.asarray(a, np.int64) + INT32_MAX
    half_denominator = np.where(total >= 0, (total + 1) // 2, -((-total + 1) // 2))  # (sum + sign) / 2, truncating
    x = 1515870810 + srdhm(half_denominator, -1010580540)  # 48/17 - 32/17 * d
    for _ in range(3):
        one_minus = (1 << 29) - srdhm(half_denominator, x)
        x = x + saturating_left_shift(srdhm(x, one_minus), 2)
    return saturating_left_shift(x, 1)


def lower_softmax(node: Node, g: Graph) -> list[KernelCall]:
    x = g.tensors[node.inputs[0]]
    depth = kernel_dims(x.shape)[3]  # the innermost axis in memory (runs_in_place)
    rows = x.size // depth
    multiplier, left_shift, diff_min = softmax_params(x.quant.s)
    params = dict(
        rows=int(rows), depth=int(depth), input_multiplier=multiplier, input_left_shift=left_shift, diff_min=diff_min
    )
    return [
        KernelCall("mcu_softmax_s8", "kernels/softmax_s8.c.j2", node.name, params, {}, node.inputs[:1], node.outputs)
    ]


@register_kernel("mcu_softmax_s8")
def softmax_s8_reference(call: KernelCall, inputs: list[np.ndarray]) -> np.ndarray:
    p = call.params
    x = inputs[0].reshape(p["rows"], p["depth"]).astype(np.int64)
    diff = x - x.max(axis=1, keepdims=True)
    used = diff >= p["diff_min"]
    scaled = srdhm(np.where(used, diff, 0) << p["input_left_shift"], p["input_multiplier"])
    exps = exp_on_negative_values(scaled)
    total = np.where(used, rdbp(exps, ACCUMULATION_INTEGER_BITS), 0).sum(axis=1, keepdims=True)
    headroom = np.array([[32 - int(t).bit_length()] for t in total[:, 0]], np.int64)  # leading zeros of the sum
    bits_over_unit = ACCUMULATION_INTEGER_BITS - headroom
    shifted_scale = one_over_one_plus_x_for_x_in_0_1(((total << headroom) & 0xFFFFFFFF) - (1 << 31))
    # Rows of more than 256 near-equal maxima would shift by more than 31; both sides stop at 31 (output -128).
    out = rdbp(srdhm(shifted_scale, exps), np.minimum(bits_over_unit + 31 - 8, 31)) - 128
    return np.where(used, np.clip(out, -128, 127), -128).astype(np.int8)


def runs_in_place(shape, axis: int) -> bool:
    """Whether mcu_softmax_s8 takes the axis as it lies: the innermost one in memory (channels of a rank-4 map)."""
    return len(shape) == 0 or storage_perm(shape)[-1] == axis % len(shape)


def check_softmax(node: Node, g: Graph) -> str | None:
    """Any axis: passes/fold_softmax.py moves one that is not innermost in memory there with two transposes."""
    shape = g.tensors[node.inputs[0]].shape
    if len(shape) > MAX_RANK:
        return f"tensors of rank {len(shape)} > {MAX_RANK} are not supported"
    return None


register(
    OpDef("Softmax", reference=softmax_reference, quant="softmax", lower=lower_softmax, check=check_softmax)
)
# The fold_softmax pass rewrites LogSoftmax as Softmax -> Log (a table of the softmax's int8 output).
register(OpDef("LogSoftmax", reference=log_softmax_reference, check=check_softmax))
