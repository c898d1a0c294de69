"""Physical layout of activations: rank-4 tensors are stored NHWC, everything else row-major in ONNX order.

Shapes in the IR stay in ONNX order; this module is the one place that maps them to memory.
"""

from __future__ import annotations

import numpy as np

from .ir import Shape

NCHW_TO_NHWC = (0, 2, 3, 1)
NHWC_TO_NCHW = (0, 3, 1, 2)
MAX_RANK = 6  # axes the C copy kernels take (MCU_MAX_RANK in runtime_c/include/mcu_nn_types.h)
BROADCAST_LOOPS = 4  # the output box the binary elementwise kernels walk (mcu_broadcast_shape)


def storage_perm(shape: Shape) -> tuple[int, ...]:
    """Axes of the ONNX shape in the order they are laid out in memory."""
    return NCHW_TO_NHWC if len(shape) == 4 else tuple(range(len(shape)))


def physical_shape(shape: Shape) -> Shape:
    return tuple(shape[a] for a in storage_perm(shape))


def to_physical(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.transpose(x, storage_perm(x.shape)))


def to_logical(x: np.ndarray, shape: Shape) -> np.ndarray:
    """Inverse of to_physical: `x` holds the bytes of a tensor of ONNX shape `shape`."""
    phys = np.asarray(x).reshape(physical_shape(shape))
    return np.transpose(phys, np.argsort(storage_perm(shape)))


def kernel_dims(shape: Shape) -> tuple[int, int, int, int]:
    """(n, h, w, c) for the C kernels: NCHW -> NHWC; lower ranks put everything but the last axis in n."""
    if len(shape) == 4:
        n, c, h, w = shape
        return int(n), int(h), int(w), int(c)
    if len(shape) == 0:
        return 1, 1, 1, 1
    return int(np.prod(shape[:-1], dtype=np.int64)), 1, 1, int(shape[-1])


def is_row_major(shape: Shape) -> bool:
    """True if the tensor's bytes are in ONNX (row-major) order: not rank 4, or one channel, or 1x1 spatial."""
    return len(shape) != 4 or shape[1] == 1 or shape[2] * shape[3] == 1


def same_bytes(src: Shape, dst: Shape) -> bool:
    """True if reinterpreting `src` as `dst` (ONNX reshape semantics) needs no data movement in memory."""
    if is_row_major(src) and is_row_major(dst):
        return True
    ids = np.arange(int(np.prod(src, dtype=np.int64))).reshape(src)
    return bool(np.array_equal(to_physical(ids).ravel(), to_physical(ids.reshape(dst)).ravel()))


def pad_rank(dims: Shape, fill: int = 1) -> tuple[int, ...]:
    """`dims` with leading `fill`s up to MAX_RANK entries (the C copy kernels' fixed-size arrays)."""
    if len(dims) > MAX_RANK:
        raise ValueError(f"rank {len(dims)} > {MAX_RANK}")
    return (fill,) * (MAX_RANK - len(dims)) + tuple(int(d) for d in dims)


def element_strides(shape: Shape) -> dict[int, int]:
    """Element stride of each ONNX axis of a tensor in its own physical layout."""
    strides, step = {}, 1
    for axis, dim in zip(reversed(storage_perm(shape)), reversed(physical_shape(shape))):
        strides[axis] = step
        step *= int(dim)
    return strides


Loops = tuple[tuple[int, ...], list[tuple[int, ...]]]  # (loop dims, per operand its element stride per loop)


def merge_loops(loops: list[tuple[int, list[int]]], operands: int, max_loops: int) -> Loops:
    """Nested loops (dim, per operand its stride), outermost first, as few as possible, padded to max_loops.

    Size-1 loops are dropped and a loop merges into the one outside it where every operand walks the pair
    contiguously (the outer stride is the inner one times the inner dim; broadcasts, stride 0, alike).
    ValueError if more than max_loops remain.
    """
    merged: list[tuple[int, list[int]]] = []
    for dim, strides in loops:
        if dim == 1:
            continue
        if merged and all(prev == cur * dim for prev, cur in zip(merged[-1][1], strides)):
            merged[-1] = (merged[-1][0] * dim, list(strides))
        else:
            merged.append((dim, list(strides)))
    if len(merged) > max_loops:
        raise ValueError(f"needs {len(merged)} nested loops over the output; the kernels walk at most {max_loops}")
    merged = [(1, [0] * operands)] * (max_loops - len(merged)) + merged
    return tuple(d for d, _ in merged), [tuple(s[k] for _, s in merged) for k in range(operands)]


def broadcast_loops(out_shape: Shape, in_shapes: list[Shape], max_loops: int = BROADCAST_LOOPS) -> Loops:
    """(loop dims, per input its element strides) over the output's physical layout, padded to max_loops.

    Input axes of size 1 (or missing, ONNX right-aligns shapes) get stride 0; see merge_loops.
    """
    per_input = [broadcast_strides(out_shape, shape) for shape in in_shapes]
    loops = [(int(out_shape[a]), [s[a] for s in per_input]) for a in storage_perm(out_shape)]
    return merge_loops(loops, len(in_shapes), max_loops)


def broadcast_strides(out_shape: Shape, shape: Shape) -> list[int]:
    """Per ONNX axis of `out_shape`, the element stride of a tensor of `shape` broadcast to it, in its own physical
    layout: 0 where it has size 1 or lacks the axis (ONNX right-aligns shapes)."""
    own, lead = element_strides(shape), len(out_shape) - len(shape)
    return [0 if a < lead or shape[a - lead] == 1 else own[a - lead] for a in range(len(out_shape))]
