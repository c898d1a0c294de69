"""GlobalAveragePool, ReduceMean, ReduceSum, ReduceMax, ReduceMin over any axes -> mcu_reduce_s8.

The kernel walks the input's physical (NHWC) box and writes each result at an output stride computed here,
so any set of axes and keepdims=0 (which changes the output's layout) need no extra copy.
Mean and sum follow TFLite's Mean: the int32 sum is rescaled by s_in / s_out, then divided by the count
(1 for sum) with halves away from zero. Max and min keep the input's quantization.
"""

from __future__ import annotations

import numpy as np

from .. import quant
from ..ir import CompileError, Graph, KernelCall, Node, Shape
from ..layout import physical_shape, storage_perm
from .registry import OpDef, register, register_kernel

REDUCE_MEAN, REDUCE_MAX, REDUCE_MIN = 0, 1, 2  # mcu_reduce_op in mcu_nn_types.h
_NUMPY = {"ReduceMean": np.mean, "ReduceSum": np.sum, "ReduceMax": np.max, "ReduceMin": np.min}


def reduced_axes(node: Node, rank: int) -> tuple[int, ...]:
    if node.op == "GlobalAveragePool":
        return tuple(range(2, rank))
    axes = node.attr("axes")
    if axes is None or len(axes) == 0:
        if node.attr("noop_with_empty_axes", 0):
            raise CompileError(f"node '{node.name}' ({node.op}): noop_with_empty_axes=1 without axes is not supported")
        return tuple(range(rank))
    return tuple(sorted({int(a) % rank for a in axes}))


def reduce_reference(node: Node, x: np.ndarray, axes: np.ndarray | None = None) -> list[np.ndarray]:
    if axes is not None:  # opset 18 (13 for ReduceSum): axes as an input, before canonicalize moves it
        node = node.with_attrs(axes=tuple(int(a) for a in axes.ravel()))
    keepdims = node.op == "GlobalAveragePool" or bool(node.attr("keepdims", 1))
    fn = _NUMPY.get(node.op, np.mean)
    return [fn(x.astype(np.float32), axis=reduced_axes(node, x.ndim), keepdims=keepdims).astype(np.float32)]


def _output_strides(x_shape: Shape, y_shape: Shape, axes: tuple[int, ...], keepdims: bool) -> tuple[int, ...]:
    """Per physical input axis, the element stride of that axis in the output's memory (0 where reduced)."""
    y_perm = storage_perm(y_shape)
    y_dims = physical_shape(y_shape)
    stride_at = [int(np.prod(y_dims[j + 1 :], dtype=np.int64)) for j in range(len(y_dims))]
    logical_stride = {axis: stride_at[j] for j, axis in enumerate(y_perm)}
    kept = [a for a in range(len(x_shape)) if a not in axes]
    strides = []
    for a in storage_perm(x_shape):
        if a in axes:
            strides.append(0)
        else:
            strides.append(logical_stride[a if keepdims else kept.index(a)])
    return tuple(strides)


def check_reduce(node: Node, g: Graph) -> str | None:
    rank = len(g.tensors[node.inputs[0]].shape)
    if rank > 4:
        return f"inputs of rank {rank} > 4 are not supported"
    if len(node.inputs) > 1 and node.inputs[1] and not g.is_const(node.inputs[1]):
        return "axes must be a constant"
    return None


def lower_reduce(node: Node, g: Graph) -> list[KernelCall]:
    x, y = g.tensors[node.inputs[0]], g.tensors[node.outputs[0]]
    rank = len(x.shape)  # check_reduce: <= 4
    axes = reduced_axes(node, rank)
    keepdims = node.op == "GlobalAveragePool" or bool(node.attr("keepdims", 1))
    pad = 4 - rank
    in_dims = (1,) * pad + physical_shape(x.shape)
    out_strides = (0,) * pad + _output_strides(x.shape, y.shape, axes, keepdims)
    reduced = (0,) * pad + tuple(int(a in axes) for a in storage_perm(x.shape))
    count = int(np.prod([x.shape[a] for a in axes], dtype=np.int64))
    if node.op in ("ReduceMax", "ReduceMin"):
        op, mult, shift, divisor = (REDUCE_MAX if node.op == "ReduceMax" else REDUCE_MIN), 0, 0, 1
    else:
        if count * 255 > quant.INT32_MAX:
            raise CompileError(f"node '{node.name}' ({node.op}): {count} values overflow the int32 sum")
        op, divisor = REDUCE_MEAN, (1 if node.op == "ReduceSum" else count)
        mult, shift = quant.quantize_multiplier(x.quant.s / y.quant.s)  # TFLite's Mean: rescale, then divide
    params = dict(
        op=op,
        input_offset=-x.quant.zp if op == REDUCE_MEAN else 0,
        output_offset=y.quant.zp if op == REDUCE_MEAN else 0,
        multiplier=mult,
        shift=shift,
        divisor=divisor,
        act_min=quant.INT8_MIN,
        act_max=quant.INT8_MAX,
        in_dims=in_dims,
        reduced=reduced,
        out_strides=out_strides,
    )
    return [
        KernelCall("mcu_reduce_s8", "kernels/reduce_s8.c.j2", node.name, params, {}, node.inputs[:1], node.outputs)
    ]


def rounded_division(total: np.ndarray, count) -> np.ndarray:
    """TFLite's average: halves away from zero, written with C's truncating division (count > 0)."""
    half = np.asarray(count) // 2
    return np.where(total > 0, (total + half) // count, -((-total + half) // count))


@register_kernel("mcu_reduce_s8")
def reduce_s8_reference(call: KernelCall, inputs: list[np.ndarray]) -> np.ndarray:
    p = call.params
    x = inputs[0].reshape(p["in_dims"]).astype(np.int64)
    axes = tuple(k for k in range(4) if p["reduced"][k])
    if p["op"] == REDUCE_MAX:
        y = x.max(axis=axes, keepdims=True)
    elif p["op"] == REDUCE_MIN:
        y = x.min(axis=axes, keepdims=True)
    else:
        total = (x + p["input_offset"]).sum(axis=axes, keepdims=True)
        scaled = quant.multiply_by_quantized_multiplier(total, p["multiplier"], p["shift"])
        y = np.clip(rounded_division(scaled, p["divisor"]), -256, 256) + p["output_offset"]
    y = np.clip(y, p["act_min"], p["act_max"])
    out = np.zeros(y.size, np.int8)
    index = np.tensordot(p["out_strides"], np.indices(y.shape), axes=1)  # each result's place in the output
    out[index.ravel()] = y.ravel()
    return out


for _op in ("GlobalAveragePool", "ReduceMean", "ReduceSum"):
    register(OpDef(_op, reference=reduce_reference, lower=lower_reduce, check=check_reduce))
for _op in ("ReduceMax", "ReduceMin"):
    register(OpDef(_op, reference=reduce_reference, quant="same", lower=lower_reduce, check=check_reduce))
