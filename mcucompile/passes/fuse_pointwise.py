"""Chains of pointwise ops that depend on one tensor x only -> one PointwiseLut node per result.

x * sigmoid(x) (SiLU), x * hardsigmoid(x) (HardSwish before opset 14), Gelu's x/sqrt2 -> erf -> +1 -> *x -> *0.5
and any mix of unary activations and scalar constants are functions of x alone, so each result the rest of
the graph reads becomes one 256-entry table of x (ops/lut.py). Intermediate values are never rounded to int8.

A result a QDQ model quantizes itself (Tensor.quant given) ends a chain: it is kept as a tensor, so the
model's own rounding there is honoured.
"""

from __future__ import annotations

from ..ir import Graph, Node
from ..ops.lut import is_pointwise


def fuse_pointwise(g: Graph) -> Graph:
    replaced, taken = pointwise_fusions(g)
    if not replaced:
        return g
    nodes = [replaced.get(n.name, n) for n in g.nodes if n.name in replaced or n.name not in taken]
    return g.rewrite(nodes)


def pointwise_fusions(g: Graph) -> tuple[dict[str, Node], set[str]]:
    """(the last body node's name -> the PointwiseLut replacing it, the names of all nodes fused away)."""
    taken: set[str] = set()
    kept: set[str] = set()  # lone clamps left as they are
    replaced: dict[str, Node] = {}  # first body node name -> the fused node standing in its place
    sources = [*g.inputs, *(t for n in g.nodes for t in n.outputs if t)]
    for x in sources:
        chain = _chain_of(g, x, taken)
        if not chain:
            continue
        inside = {t for n in chain for t in n.outputs}
        results = [
            t
            for n in chain
            for t in n.outputs
            if t in g.outputs or any(c not in chain for c in g.consumers(t))
        ]
        for y in results:
            body = _ancestors(chain, y)
            if all(n.op == "Clip" for n in body):
                kept.update(n.name for n in body)  # a lone clamp stays a clamp: in place, no table
                continue
            # Scalars of any rank ([1,1,1] too) as 0-d values: the table is a function of x alone, shaped like x.
            constants = {t: g.const(t).reshape(()) for n in body for t in n.inputs if t and t != x and t not in inside}
            fused = Node(
                "PointwiseLut",
                body[-1].name,
                (x,),
                (y,),
                {"body": tuple(body), "constants": constants},
            )
            replaced[body[-1].name] = fused
            taken.update(n.name for n in body)
        taken.update(n.name for n in chain)  # no later source may claim them
    return replaced, taken - kept


def _chain_of(g: Graph, x: str, taken: set[str]) -> list[Node]:
    """The pointwise nodes (in order) whose operands are x, values computed from x this way, or scalar constants."""
    shape = g.tensors[x].shape
    if g.tensors[x].data is not None:
        return []
    values, chain = {x}, []
    for n in g.nodes:
        if n.name in taken or not is_pointwise(n.op) or len(n.outputs) != 1:
            continue
        operands = [t for t in n.inputs if t]
        if not any(t in values for t in operands):
            continue
        if not all(t in values or _is_scalar_const(g, t) for t in operands):
            continue
        if g.tensors[n.outputs[0]].shape != shape:
            continue
        chain.append(n)
        if g.tensors[n.outputs[0]].quant is None:  # a QDQ-quantized value ends the chain (see module doc)
            values.add(n.outputs[0])
    return chain


def _is_scalar_const(g: Graph, name: str) -> bool:
    value = g.const(name)
    return value is not None and value.size == 1


def _ancestors(chain: list[Node], y: str) -> list[Node]:
    """The chain nodes y depends on, in chain order."""
    needed, body = {y}, []
    for n in reversed(chain):
        if n.outputs[0] in needed:
            body.append(n)
            needed.update(n.inputs)
    return body[::-1]
