"""InstanceNormalization and GroupNormalization -> mcu_norm_s8: normalisation with statistics of the running
input, in integers.

Per batch and group of channels, the C kernel sums the int8 values and their squares over the group's positions
and channels (the zero point cancels), takes V = count^2 (variance + epsilon) in input units with an integer
square root, and scales each value's distance to the mean to a Q12 fixed-point number t; the per-channel scale
and bias (gamma / output_scale, beta / output_scale) then give the output in one 64-bit multiply-add and a
rounding shift. The numpy functions here are the spec of the C kernel, bit for bit. InstanceNormalization is
the case of one channel per group. PyTorch's GroupNorm export (Reshape, InstanceNormalization, Reshape, Mul,
Add) becomes one GroupNormalization in passes/fold_norm.py.
"""

from __future__ import annotations

import math

import numpy as np

from .. import quant
from ..ir import CompileError, Graph, KernelCall, Node
from ..layout import physical_shape
from .lift import accepts_1d
from .registry import OpDef, register, register_kernel

FRACTION_BITS = 12  # of t, the normalised value (MCU_NORM_FRACTION_BITS)
MAX_GROUP_VALUES = (1 << 23) - 1  # P * K: the int32 sum of |x| <= 128 and |count * x - sum| < 2^31
MAX_EPS_TERM = 1 << 61


def groups_of(node: Node, channels: int) -> int:
    return channels if node.op == "InstanceNormalization" else int(node.attr("num_groups", 0))


def per_channel(node: Node, values: np.ndarray, channels: int) -> np.ndarray:
    """Scale or bias per channel: GroupNormalization before opset 21 gives one per group (each group's channels
    share it); InstanceNormalization and opset 21 one per channel."""
    values = np.asarray(values, np.float64).ravel()
    groups = groups_of(node, channels)
    if values.size == channels:
        return values
    if values.size == groups:
        return np.repeat(values, channels // groups)
    if values.size == 1:
        return np.full(channels, values[0])
    raise CompileError(f"node '{node.name}' ({node.op}): {values.size} scale/bias values for {channels} channels")


def norm_reference(node: Node, x: np.ndarray, scale: np.ndarray, bias: np.ndarray) -> list[np.ndarray]:
    n, c = x.shape[:2]
    groups = groups_of(node, c)
    xg = x.astype(np.float64).reshape(n, groups, -1)
    mean = xg.mean(axis=2, keepdims=True)
    var = xg.var(axis=2, keepdims=True)
    y = ((xg - mean) / np.sqrt(var + float(node.attr("epsilon", 1e-5)))).reshape(x.shape)
    shape = (1, c) + (1,) * (x.ndim - 2)
    y = y * per_channel(node, scale, c).reshape(shape) + per_channel(node, bias, c).reshape(shape)
    return [y.astype(np.float32)]


def check_norm(node: Node, g: Graph) -> str | None:
    x = g.tensors[node.inputs[0]]
    if len(x.shape) != 4:
        return f"rank-3 or rank-4 (N, C, ...) inputs are supported, got shape {x.shape}"
    if len(node.inputs) < 3 or not all(g.is_const(t) for t in node.inputs[1:3]):
        return "scale and bias must be constants"
    c = x.shape[1]
    groups = groups_of(node, c)
    if groups < 1 or c % groups:
        return f"num_groups={groups} does not divide the {c} channels"
    if x.size // x.shape[0] // groups > MAX_GROUP_VALUES:
        return f"a group of {x.size // x.shape[0] // groups} values exceeds {MAX_GROUP_VALUES}"
    try:
        per_channel(node, g.const(node.inputs[1]), c), per_channel(node, g.const(node.inputs[2]), c)
    except CompileError as exc:
        return str(exc).split(": ", 1)[-1]
    return None


def norm_params(node: Node, g: Graph) -> tuple[dict, dict]:
    """The integer constants of one mcu_norm_s8 call (params, arrays)."""
    x, y = g.tensors[node.inputs[0]], g.tensors[node.outputs[0]]
    n, c, h, w = x.shape
    groups = groups_of(node, c)
    count = (c // groups) * h * w
    eps = float(node.attr("epsilon", 1e-5))
    eps_term = min(max(round(eps * count * count / (float(x.quant.s) ** 2)), 1), MAX_EPS_TERM)
    gamma = per_channel(node, g.const(node.inputs[1]), c) / float(y.quant.s)
    beta = per_channel(node, g.const(node.inputs[2]), c) / float(y.quant.s)
    # the largest output shift (precision) that keeps the gains in int32 and the biases well inside int64
    limit = min(30 - math.frexp(float(np.abs(gamma).max(initial=0.0)))[1], 60 - FRACTION_BITS - math.frexp(
        float(np.abs(beta).max(initial=0.0)))[1])
    out_shift = min(FRACTION_BITS + limit, 40)
    if out_shift <= FRACTION_BITS:
        raise CompileError(f"node '{node.name}' ({node.op}): scale/bias too large for the output scale")
    gain = np.round(gamma * 2.0 ** (out_shift - FRACTION_BITS)).astype(np.int32)
    bias = np.round(beta * 2.0**out_shift).astype(np.int64)
    act_min, act_max = quant.activation_range(node.attr("activation"), y.quant)
    params = dict(
        batches=n, positions=h * w, groups=groups, group_channels=c // groups, eps_term=int(eps_term),
        out_shift=int(out_shift), output_offset=y.quant.zp, act_min=act_min, act_max=act_max,
    )  # fmt: skip
    return params, dict(gain=gain, bias=bias)


def lower_norm(node: Node, g: Graph) -> list[KernelCall]:
    params, arrays = norm_params(node, g)
    x = g.tensors[node.inputs[0]]
    assert physical_shape(x.shape)[-1] == params["groups"] * params["group_channels"]  # NHWC: [N, P, G, K]
    return [KernelCall("mcu_norm_s8", "kernels/norm_s8.c.j2", node.name, params, arrays, node.inputs[:1],
                       node.outputs, overlap_gap=0)]  # fmt: skip


def _round_shift(x: np.ndarray, shift) -> np.ndarray:
    """round(x / 2^shift), halves upward, in int64 (mcu_round_shift64)."""
    return (x + (np.int64(1) << (np.asarray(shift, np.int64) - 1))) >> np.asarray(shift, np.int64)


@register_kernel("mcu_norm_s8")
def norm_s8_reference(call: KernelCall, inputs: list[np.ndarray]) -> np.ndarray:
    p, a = call.params, call.arrays
    n, positions, groups, k = p["batches"], p["positions"], p["groups"], p["group_channels"]
    x = inputs[0].reshape(n, positions, groups, k).astype(np.int64)
    count = positions * k
    total = x.sum(axis=(1, 3), keepdims=True)
    squares = (x * x).sum(axis=(1, 3), keepdims=True)
    v = count * squares - total * total + p["eps_term"]
    m = np.empty_like(v)
    u = np.empty_like(v)
    for index, value in np.ndenumerate(v):  # N x G values: the integer square root of each, as the C does
        value, shifts = int(value), 0
        while value < 1 << 60:
            value, shifts = value << 2, shifts + 1
        m[index], u[index] = ((1 << 61) - 1) // math.isqrt(value), shifts
    t = _round_shift((count * x - total) * m, 61 - FRACTION_BITS - u)
    gain = a["gain"].astype(np.int64).reshape(1, 1, groups, k)
    bias = a["bias"].astype(np.int64).reshape(1, 1, groups, k)
    y = np.clip(_round_shift(t * gain + bias, p["out_shift"]), -256, 256) + p["output_offset"]
    return np.clip(y, p["act_min"], p["act_max"]).astype(np.int8).reshape(inputs[0].shape)


for _op in ("InstanceNormalization", "GroupNormalization"):
    register(OpDef(_op, reference=norm_reference, lower=lower_norm, check=accepts_1d(check_norm),
                   fusable_activation=True))  # fmt: skip
