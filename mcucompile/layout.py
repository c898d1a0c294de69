"""Physical layout of activations: rank-4 tensors are stored NHWC, everything else row-major in ONNX order.

Shapes in the IR stay in ONNX order; this module is the one place that maps them to memory.
"""

from __future__ import annotations

import numpy as np

from .ir import Shape

NCHW_TO_NHWC = (0, 2, 3, 1)
NHWC_TO_NCHW = (0, 3, 1, 2)


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
