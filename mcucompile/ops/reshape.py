"""Reshape, Flatten, Squeeze, Unsqueeze: views that cost no bytes when the memory layout allows it;
Transpose -> mcu_transpose_s8 on the physical layout (or nothing, when the bytes do not move).

When a view crosses the NHWC/row-major boundary with real data movement (e.g. Flatten of a C x H x W map),
lower.py inserts mcu_transpose_s8 copies too; this module owns that kernel.
"""

from __future__ import annotations

import numpy as np

from ..ir import Graph, KernelCall, Node
from ..layout import physical_shape, storage_perm
from .registry import OpDef, attr_ints, register, register_kernel


@register_kernel("mcu_transpose_s8")
def transpose_s8_reference(call: KernelCall, inputs: list[np.ndarray]) -> np.ndarray:
    x = inputs[0].reshape(call.params["in_dims"])
    return np.ascontiguousarray(x.transpose(call.params["perm"]))


def transpose_call(node: str, src: str, dst: str, in_dims: tuple[int, ...], perm: tuple[int, ...]) -> KernelCall:
    """A copy of `src` (row-major with shape in_dims, rank <= 4) into `dst` with its axes reordered by perm."""
    pad = 4 - len(in_dims)
    dims4 = (1,) * pad + tuple(int(d) for d in in_dims)
    perm4 = tuple(range(pad)) + tuple(p + pad for p in perm)
    out4 = tuple(dims4[p] for p in perm4)
    return KernelCall(
        "mcu_transpose_s8",
        "kernels/transpose_s8.c.j2",
        node,
        dict(in_dims=dims4, perm=perm4, out_dims=out4),
        {},
        (src,),
        (dst,),
    )


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


def _view_reference(node, x, *_):  # the float evaluator reshapes views to the graph's shape itself
    raise NotImplementedError


register(OpDef("Transpose", reference=transpose_reference, quant="same", lower=lower_transpose))
for _op in ("Reshape", "Flatten", "Squeeze", "Unsqueeze"):
    register(OpDef(_op, reference=_view_reference, quant="same", is_view=True))
