"""Reshape, Flatten, Squeeze, Unsqueeze: views that cost no bytes when the memory layout allows it;
Transpose, DepthToSpace, SpaceToDepth -> mcu_transpose_s8 on the physical layout (or nothing, when the bytes do
not move).

When a view crosses the NHWC/row-major boundary with real data movement (e.g. Flatten of a C x H x W map),
lower.py inserts mcu_transpose_s8 copies too; this module owns that kernel.
"""

from __future__ import annotations

import numpy as np

from ..ir import CompileError, Graph, KernelCall, Node
from ..layout import MAX_RANK, pad_rank, physical_shape, storage_perm
from .registry import OpDef, attr_ints, register, register_kernel


@register_kernel("mcu_transpose_s8")
def transpose_s8_reference(call: KernelCall, inputs: list[np.ndarray]) -> np.ndarray:
    x = inputs[0].reshape(call.params["in_dims"])
    return np.ascontiguousarray(x.transpose(call.params["perm"]))


def transpose_call(node: str, src: str, dst: str, in_dims: tuple[int, ...], perm: tuple[int, ...]) -> KernelCall:
    """A copy of `src` (row-major with shape in_dims, rank <= MAX_RANK) into `dst` with its axes reordered by perm.

    params: `dims`/`axes` as given (what composing two transposes reads), `in_dims`/`perm` padded with leading
    size-1 axes to the kernel's MAX_RANK, `out_dims` the output's shape as given.
    """
    dims, axes = tuple(int(d) for d in in_dims), tuple(int(p) for p in perm)
    if sorted(axes) != list(range(len(dims))):
        raise CompileError(f"internal: node '{node}': {axes} is not a permutation of {len(dims)} axes")
    if len(dims) > MAX_RANK:
        raise CompileError(f"node '{node}': a transpose of rank {len(dims)}; at most {MAX_RANK} is supported")
    pad = MAX_RANK - len(dims)
    params = dict(
        dims=dims,
        axes=axes,
        in_dims=pad_rank(dims),
        perm=tuple(range(pad)) + tuple(p + pad for p in axes),
        out_dims=tuple(dims[p] for p in axes),
    )
    return KernelCall("mcu_transpose_s8", "kernels/transpose_s8.c.j2", node, params, {}, (src,), (dst,))


def moves_bytes(dims: tuple[int, ...], perm: tuple[int, ...]) -> bool:
    """False when the permutation only moves axes of size 1, so the copy would be the identity."""
    kept = [p for p in perm if dims[p] != 1]
    return kept != sorted(kept)


def transpose_reference(node: Node, x: np.ndarray) -> list[np.ndarray]:
    perm = attr_ints(node, "perm", tuple(reversed(range(x.ndim))))
    return [np.ascontiguousarray(np.transpose(x, perm))]


def lower_transpose(node: Node, g: Graph) -> list[KernelCall]:
    shape = g.tensors[node.inputs[0]].shape
    out_shape = g.tensors[node.outputs[0]].shape
    perm = attr_ints(node, "perm", tuple(reversed(range(len(shape)))))
    # physical out axis k is logical out axis storage_perm(out)[k] = logical in axis perm[...], found in physical in.
    position = {a: i for i, a in enumerate(storage_perm(shape))}
    physical_perm = tuple(position[perm[a]] for a in storage_perm(out_shape))
    return [transpose_call(node.name, node.inputs[0], node.outputs[0], physical_shape(shape), physical_perm)]


def check_transpose(node: Node, g: Graph) -> str | None:
    rank = len(g.tensors[node.inputs[0]].shape)
    return f"a transpose of rank {rank}; at most {MAX_RANK} is supported" if rank > MAX_RANK else None


# --- DepthToSpace, SpaceToDepth: a rank-6 transpose of the NHWC bytes ------------------------------------------


def _block(node: Node) -> int:
    return int(node.attr("blocksize"))


def _crd(node: Node) -> bool:
    mode = node.attr("mode", "DCR")
    return (mode.decode() if isinstance(mode, bytes) else mode) == "CRD"


def depth_to_space_reference(node: Node, x: np.ndarray) -> list[np.ndarray]:
    n, c, h, w = x.shape
    b = _block(node)
    if _crd(node):
        y = x.reshape(n, c // b**2, b, b, h, w).transpose(0, 1, 4, 2, 5, 3)
    else:
        y = x.reshape(n, b, b, c // b**2, h, w).transpose(0, 3, 4, 1, 5, 2)
    return [np.ascontiguousarray(y.reshape(n, c // b**2, h * b, w * b))]


def space_to_depth_reference(node: Node, x: np.ndarray) -> list[np.ndarray]:
    n, c, h, w = x.shape
    b = _block(node)
    y = x.reshape(n, c, h // b, b, w // b, b).transpose(0, 3, 5, 1, 2, 4)
    return [np.ascontiguousarray(y.reshape(n, c * b * b, h // b, w // b))]


def lower_depth_to_space(node: Node, g: Graph) -> list[KernelCall]:
    """NHWC input (N, H, W, C) read as (N, H, W, b, b, C') (DCR) or (N, H, W, C', b, b) (CRD); the output's
    NHWC bytes are (N, H, b, W, b, C')."""
    n, c, h, w = g.tensors[node.inputs[0]].shape
    b = _block(node)
    if _crd(node):
        dims, perm = (n, h, w, c // b**2, b, b), (0, 1, 4, 2, 5, 3)
    else:
        dims, perm = (n, h, w, b, b, c // b**2), (0, 1, 3, 2, 4, 5)
    return [transpose_call(node.name, node.inputs[0], node.outputs[0], dims, perm)]


def lower_space_to_depth(node: Node, g: Graph) -> list[KernelCall]:
    """NHWC input read as (N, H', b, W', b, C); the output's NHWC bytes are (N, H', W', b, b, C)."""
    n, c, h, w = g.tensors[node.inputs[0]].shape
    b = _block(node)
    dims = (n, h // b, b, w // b, b, c)
    return [transpose_call(node.name, node.inputs[0], node.outputs[0], dims, (0, 1, 3, 2, 4, 5))]


def check_block(node: Node, g: Graph) -> str | None:
    shape = g.tensors[node.inputs[0]].shape
    b = int(node.attr("blocksize", 0))
    if len(shape) != 4 or b < 1:
        return f"needs a rank-4 input and a blocksize >= 1 (got shape {shape}, blocksize {b})"
    divides = shape[1] % (b * b) == 0 if node.op == "DepthToSpace" else shape[2] % b == 0 and shape[3] % b == 0
    return None if divides else f"blocksize {b} does not divide the input of shape {shape}"


def _view_reference(node, x, *_):  # the float evaluator reshapes views to the graph's shape itself
    raise NotImplementedError


register(OpDef("Transpose", reference=transpose_reference, quant="same", lower=lower_transpose, check=check_transpose))
register(OpDef("DepthToSpace", reference=depth_to_space_reference, quant="same", lower=lower_depth_to_space,
               check=check_block))  # fmt: skip
register(OpDef("SpaceToDepth", reference=space_to_depth_reference, quant="same", lower=lower_space_to_depth,
               check=check_block))  # fmt: skip
for _op in ("Reshape", "Flatten", "Squeeze", "Unsqueeze"):
    register(OpDef(_op, reference=_view_reference, quant="same", is_view=True))
