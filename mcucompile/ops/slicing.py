"""Concat, Split, Slice, Gather, Expand, Tile: int8 values moved between tensors in their physical (NHWC) layout.

An ONNX axis maps to its physical axis through layout.storage_perm, so a channel concat or split in NHWC is a
copy of contiguous runs per pixel. Split and Slice keep the input's quantization; Concat gets its own range
and requantizes an input only when its quantization differs (the quantize pass gives it to the inputs that can
share it, as TFLite's converter does). lower.py then lets the producers of such inputs write their slice of the
output themselves, and removes those parts (or the whole call) from the copy.
"""

from __future__ import annotations

import numpy as np

from .. import quant
from ..ir import CompileError, Graph, KernelCall, Node, QuantParams, Shape
from ..layout import MAX_RANK, broadcast_strides, element_strides, merge_loops, physical_shape, storage_perm
from .registry import OpDef, attr_ints, is_constant_operand, register, register_kernel
from .reshape import transpose_call


def _physical_axis(shape: Shape, axis: int) -> int:
    return storage_perm(shape).index(axis % len(shape))


def _split_at(shape: Shape, axis: int) -> tuple[int, int]:
    """(outer, inner): elements before the physical axis, and from it on (the run copied per outer index)."""
    dims = physical_shape(shape)
    p = _physical_axis(shape, axis)
    return int(np.prod(dims[:p], dtype=np.int64)), int(np.prod(dims[p:], dtype=np.int64))


def check_moves(node: Node, g: Graph) -> str | None:
    """Concat/Slice/Split/Gather: tensors of rank <= MAX_RANK; Slice bounds and Gather indices constant."""
    ranks = [len(g.tensors[t].shape) for t in (*node.inputs[:1], *node.outputs) if t]
    if max(ranks) > MAX_RANK:
        return f"tensors of rank {max(ranks)} > {MAX_RANK} are not supported"
    if node.op == "Slice" and not all(is_constant_operand(g, t) for t in node.inputs[1:] if t):
        return "starts, ends, axes and steps must be constants"
    if node.op == "Gather":
        indices = g.tensors[node.inputs[1]]
        if not is_constant_operand(g, node.inputs[1]) or len(indices.shape) != 1:
            return "only constant 1-D indices (the rank kept) are supported"
    return None


# --- Concat ---------------------------------------------------------------------------------------------------


def concat_reference(node: Node, *xs: np.ndarray) -> list[np.ndarray]:
    return [np.concatenate([x.astype(np.float32) for x in xs], axis=int(node.attr("axis")))]


def _requantize_params(x: QuantParams, y: QuantParams) -> dict:
    mult, shift = quant.quantize_multiplier(x.s / y.s)
    return dict(input_offset=-x.zp, output_offset=y.zp, multiplier=mult, shift=shift)


def lower_concat(node: Node, g: Graph) -> list[KernelCall]:
    y = g.tensors[node.outputs[0]]
    axis = int(node.attr("axis"))
    outer, out_inner = _split_at(y.shape, axis)
    parts, offset = [], 0
    for name in node.inputs:
        x = g.tensors[name]
        if x.data is not None:
            raise CompileError(f"node '{node.name}' (Concat): constant input '{name}' is not supported")
        inner = _split_at(x.shape, axis)[1]
        same = bool(np.array_equal(x.quant.scale, y.quant.scale) and x.quant.zp == y.quant.zp)
        parts.append(dict(inner=inner, offset=offset, copy=int(same), **_requantize_params(x.quant, y.quant)))
        offset += inner
    params = dict(count=len(parts), outer=outer, out_inner=out_inner, parts=tuple(parts))
    return [KernelCall("mcu_concat_s8", "kernels/concat_s8.c.j2", node.name, params, {}, node.inputs, node.outputs)]


def concat_writes(call: KernelCall) -> np.ndarray:
    """The output bytes a (possibly partial) concat call stores: its parts' runs; the rest are written in place."""
    p = call.params
    mask = np.zeros((p["outer"], p["out_inner"]), bool)
    for part in p["parts"]:
        mask[:, part["offset"] : part["offset"] + part["inner"]] = True
    return mask


@register_kernel("mcu_concat_s8", writes=concat_writes)
def concat_s8_reference(call: KernelCall, inputs: list[np.ndarray]) -> np.ndarray:
    p = call.params
    out = np.zeros((p["outer"], p["out_inner"]), np.int8)
    for part, x in zip(p["parts"], inputs):
        x = x.reshape(p["outer"], part["inner"])
        if not part["copy"]:
            offset_x = x.astype(np.int64) + part["input_offset"]
            x = quant.requantize_to_int8(offset_x, part["multiplier"], part["shift"], part["output_offset"], -128, 127)
        out[:, part["offset"] : part["offset"] + part["inner"]] = x
    return out


# --- Slice and Split -------------------------------------------------------------------------------------------


def _slice_bounds(node: Node, shape: Shape, args: list) -> list[tuple[int, int, int]]:
    """Per axis (start, stop, step) exactly as ONNX clamps them (stop may be -1 for a negative step: to the start)."""
    if node.op == "Slice" and len(args) >= 2:
        starts, ends = args[0], args[1]
        axes = args[2] if len(args) > 2 and args[2] is not None else range(len(starts))
        steps = args[3] if len(args) > 3 and args[3] is not None else [1] * len(starts)
    else:  # opset < 10: attributes
        starts, ends = attr_ints(node, "starts", ()), attr_ints(node, "ends", ())
        axes, steps = attr_ints(node, "axes", range(len(starts))), [1] * len(starts)
    bounds = [(0, d, 1) for d in shape]
    for start, end, axis, step in zip(starts, ends, axes, steps):
        axis = int(axis) % len(shape)
        dim, start, end, step = shape[axis], int(start), int(end), int(step)
        if step == 0:
            raise CompileError(f"node '{node.name}' (Slice): step 0")
        start = start + dim if start < 0 else start
        end = end + dim if end < 0 else end
        if step > 0:
            start, end = min(max(start, 0), dim), min(max(end, 0), dim)
        else:
            start, end = min(max(start, 0), dim - 1), min(max(end, -1), dim - 1)
        bounds[axis] = (start, end, step)
    return bounds


def _slice_args(node: Node, g: Graph) -> list:
    args = []
    for t in node.inputs[1:]:  # check_moves: constants
        args.append(None if not t else np.asarray(g.const(t)).ravel())
    return args


def slice_reference(node: Node, x: np.ndarray, *args) -> list[np.ndarray]:
    args = [None if a is None else np.asarray(a).ravel() for a in args]
    bounds = _slice_bounds(node, x.shape, args)
    return [x[tuple(slice(s, None if e < 0 else e, st) for s, e, st in bounds)].astype(np.float32)]


def _split_sizes(node: Node, x_shape: Shape, split: np.ndarray | None) -> list[int]:
    axis = int(node.attr("axis", 0)) % len(x_shape)
    if split is None and node.attr("split") is not None:
        split = np.asarray(node.attr("split"))
    if split is not None:
        return [int(s) for s in np.asarray(split).ravel()]
    count = int(node.attr("num_outputs", len(node.outputs)))
    step = -(-x_shape[axis] // count)  # ONNX: equal parts, the last one smaller
    return [min(step, x_shape[axis] - i * step) for i in range(count)]


def split_reference(node: Node, x: np.ndarray, split: np.ndarray | None = None) -> list[np.ndarray]:
    axis = int(node.attr("axis", 0)) % x.ndim
    edges = np.cumsum(_split_sizes(node, x.shape, split))[:-1]
    return [part.astype(np.float32) for part in np.split(x, edges, axis=axis)]


def slice_call(node: str, src: str, dst: str, shape: Shape, bounds: list[tuple[int, int, int]]) -> KernelCall:
    """A copy of the box `bounds` (ONNX order) of `src` into `dst`, in the physical layout."""
    strides = element_strides(shape)
    first = sum(bounds[a][0] * strides[a] for a in range(len(shape)))
    loops = [(max(0, -(-(bounds[a][1] - bounds[a][0]) // bounds[a][2])), [bounds[a][2] * strides[a]])
             for a in storage_perm(shape)]  # fmt: skip
    return strided_copy_call(node, src, dst, int(np.prod(shape, dtype=np.int64)), first, loops)


def strided_copy_call(node: str, src: str, dst: str, in_size: int, first: int, loops) -> KernelCall:
    """mcu_slice_s8: output index i (row-major over the loops' dims) reads input element first + sum i_k * stride_k.

    `loops`: (dim, [stride]) outermost first, as layout.merge_loops takes them. A CompileError names the node when
    more than MAX_RANK loops remain after merging; every index is checked to stay inside the input's in_size.
    """
    try:
        dims, (strides,) = merge_loops(list(loops), 1, MAX_RANK)
    except ValueError as exc:
        raise CompileError(f"node '{node}': the copy {exc}") from None
    if all(dims):
        reach = [(d - 1) * s for d, s in zip(dims, strides)]
        low, high = first + sum(min(r, 0) for r in reach), first + sum(max(r, 0) for r in reach)
        if low < 0 or high >= in_size:
            raise CompileError(f"internal: node '{node}': the copy reads elements {low}..{high} of {in_size}")
    params = dict(first=int(first), strides=tuple(int(v) for v in strides), out_dims=tuple(int(d) for d in dims))
    return KernelCall("mcu_slice_s8", "kernels/slice_s8.c.j2", node, params, {}, (src,), (dst,))


def lower_slice(node: Node, g: Graph) -> list[KernelCall]:
    x = g.tensors[node.inputs[0]]
    bounds = _slice_bounds(node, x.shape, _slice_args(node, g))
    return [slice_call(node.name, node.inputs[0], node.outputs[0], x.shape, bounds)]


def lower_split(node: Node, g: Graph) -> list[KernelCall]:
    x = g.tensors[node.inputs[0]]
    axis = int(node.attr("axis", 0)) % len(x.shape)
    split = g.const(node.inputs[1]) if len(node.inputs) > 1 and node.inputs[1] else None
    calls, start = [], 0
    for i, (size, out) in enumerate(zip(_split_sizes(node, x.shape, split), node.outputs)):
        bounds = [(0, d, 1) for d in x.shape]
        bounds[axis] = (start, start + size, 1)
        start += size
        if out:
            calls.append(slice_call(f"{node.name}_{i}", node.inputs[0], out, x.shape, bounds))
    return calls


@register_kernel("mcu_slice_s8")
def slice_s8_reference(call: KernelCall, inputs: list[np.ndarray]) -> np.ndarray:
    p = call.params
    index = np.full(p["out_dims"], p["first"], np.int64)
    for axis, (dim, stride) in enumerate(zip(p["out_dims"], p["strides"])):
        shape = [1] * len(p["out_dims"])
        shape[axis] = dim
        index = index + (np.arange(dim, dtype=np.int64) * stride).reshape(shape)
    return inputs[0].ravel()[index]


# --- Gather ----------------------------------------------------------------------------------------------------


def gather_reference(node: Node, x: np.ndarray, indices: np.ndarray) -> list[np.ndarray]:
    return [np.take(x, np.asarray(indices, np.int64), axis=int(node.attr("axis", 0))).astype(np.float32)]


def lower_gather(node: Node, g: Graph) -> list[KernelCall]:
    x, indices = g.tensors[node.inputs[0]], g.const(node.inputs[1])  # check_moves: constant, 1-D
    axis = int(node.attr("axis", 0)) % len(x.shape)
    dim = x.shape[axis]
    indices = np.where(indices < 0, indices + dim, indices).astype(np.int64)
    outer, inner_from_axis = _split_at(x.shape, axis)
    inner = inner_from_axis // dim
    swap = _swap_factors(indices)
    if swap is not None and inner == 1:  # a channel shuffle in NHWC: one transpose of (pixels, a, b)
        a, b = swap
        return [transpose_call(node.name, node.inputs[0], node.outputs[0], (outer, a, b), (0, 2, 1))]
    params = dict(outer=outer, axis_dim=dim, inner=inner, count=len(indices))
    return [
        KernelCall(
            "mcu_gather_s8",
            "kernels/gather_s8.c.j2",
            node.name,
            params,
            dict(indices=indices.astype(np.int32)),
            node.inputs[:1],
            node.outputs,
        )
    ]


def _swap_factors(indices: np.ndarray) -> tuple[int, int] | None:
    """(a, b) when indices == arange(a*b).reshape(a, b).T.ravel() (ShuffleNet's channel shuffle), else None."""
    n = len(indices)
    for a in range(2, n):
        if n % a == 0 and np.array_equal(indices, np.arange(n).reshape(a, n // a).T.ravel()):
            return a, n // a
    return None


@register_kernel("mcu_gather_s8")
def gather_s8_reference(call: KernelCall, inputs: list[np.ndarray]) -> np.ndarray:
    p = call.params
    x = inputs[0].reshape(p["outer"], p["axis_dim"], p["inner"])
    return np.ascontiguousarray(x[:, call.arrays["indices"].astype(np.int64), :])


# --- Expand, Tile: broadcast copies (a stride of 0 repeats) ----------------------------------------------------


def expand_reference(node: Node, x: np.ndarray, shape: np.ndarray) -> list[np.ndarray]:
    out = np.broadcast_shapes(x.shape, tuple(int(d) for d in np.asarray(shape).ravel()))
    return [np.ascontiguousarray(np.broadcast_to(x, out)).astype(np.float32)]


def tile_reference(node: Node, x: np.ndarray, repeats: np.ndarray) -> list[np.ndarray]:
    return [np.tile(x, tuple(int(r) for r in np.asarray(repeats).ravel())).astype(np.float32)]


def _broadcast_loops(node: Node, x_shape: Shape, y_shape: Shape) -> list[tuple[int, list[int]]]:
    """The copy's loops over the output's physical layout: Expand walks each output axis with the input's stride
    (0 where broadcast); Tile walks each axis as (repeat, stride 0) outside (input dim, the input's stride)."""
    order = storage_perm(y_shape)
    if node.op == "Expand":
        strides = broadcast_strides(y_shape, x_shape)
        return [(y_shape[a], [strides[a]]) for a in order]
    strides = element_strides(x_shape)
    return [loop for a in order for loop in ((y_shape[a] // x_shape[a], [0]), (x_shape[a], [strides[a]]))]


def check_broadcast_copy(node: Node, g: Graph) -> str | None:
    """Expand/Tile: a constant shape or repeats, and at most MAX_RANK loops after merging."""
    if not is_constant_operand(g, node.inputs[1]):
        return f"the {'shape' if node.op == 'Expand' else 'repeats'} input must be a constant"
    x, y = g.tensors[node.inputs[0]], g.tensors[node.outputs[0]]
    try:
        merge_loops(_broadcast_loops(node, x.shape, y.shape), 1, MAX_RANK)
    except ValueError as exc:
        return f"the broadcast copy {exc}"
    return None


def lower_broadcast_copy(node: Node, g: Graph) -> list[KernelCall]:
    x, y = g.tensors[node.inputs[0]], g.tensors[node.outputs[0]]
    loops = _broadcast_loops(node, x.shape, y.shape)
    return [strided_copy_call(node.name, node.inputs[0], node.outputs[0], x.size, 0, loops)]


register(OpDef("Concat", reference=concat_reference, lower=lower_concat, check=check_moves))
register(OpDef("Slice", reference=slice_reference, quant="same", lower=lower_slice, check=check_moves))
register(OpDef("Split", reference=split_reference, quant="same", lower=lower_split, check=check_moves))
register(OpDef("Gather", reference=gather_reference, quant="same", lower=lower_gather, check=check_moves))
register(OpDef("Expand", reference=expand_reference, quant="same", lower=lower_broadcast_copy,
               check=check_broadcast_copy))  # fmt: skip
register(OpDef("Tile", reference=tile_reference, quant="same", lower=lower_broadcast_copy, check=check_broadcast_copy))
