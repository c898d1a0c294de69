"""Reshape, Flatten, Squeeze, Unsqueeze: views that cost no bytes when the memory layout allows it.

When a view crosses the NHWC/row-major boundary with real data movement (e.g. Flatten of a C x H x W map),
lower.py inserts mcu_transpose_s8 copies; this module owns that kernel.
"""

from __future__ import annotations

import numpy as np

from ..ir import KernelCall
from .registry import OpDef, register, register_kernel


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


def _view_reference(node, x, *_):  # the float evaluator reshapes views to the graph's shape itself
    raise NotImplementedError


for _op in ("Reshape", "Flatten", "Squeeze", "Unsqueeze"):
    register(OpDef(_op, reference=_view_reference, quant="same", is_view=True))
