"""Reshape/Transpose chains that only permute the channels of a 4-D tensor -> one Gather on axis 1.

ShuffleNet's channel shuffle is exported as Reshape(N, g, C/g, H, W) -> Transpose(0, 2, 1, 3, 4) ->
Reshape(N, C, H, W): three copies through a rank-5 tensor, which NHWC memory cannot hold as a view. As a
channel Gather it is one copy per pixel (lowered to a single transpose of (pixels, g, C/g)).
"""

from __future__ import annotations

import numpy as np

from ..ir import Graph, Node, Tensor

_MOVES = ("Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose")


def fold_channel_shuffle(g: Graph) -> Graph:
    for start in [n for n in g.nodes if n.op in _MOVES]:
        if not any(n is start for n in g.nodes):
            continue  # consumed by an earlier fold
        x = g.tensors[start.inputs[0]]
        if len(x.shape) != 4 or x.data is not None:
            continue
        chain = _chain_to_same_shape(g, start, x.shape)
        if chain is None:
            continue
        perm = _channel_permutation(g, chain, x.shape)
        if perm is None:
            continue
        end = chain[-1].outputs[0]
        indices = f"{end}::channel_order"
        gather = Node("Gather", chain[-1].name, (x.name, indices), (end,), {"axis": 1})
        dropped = {n.name for n in chain}
        nodes = [gather if n.name == chain[-1].name else n for n in g.nodes if n.name not in dropped - {chain[-1].name}]
        g = g.rewrite(nodes, {indices: Tensor(indices, perm.shape, "int64", data=perm)})
    return g


def _chain_to_same_shape(g: Graph, start: Node, shape) -> list[Node] | None:
    """Single-consumer Reshape/Transpose nodes from `start` to the first tensor of `shape` again."""
    chain, node = [start], start
    while len(chain) <= 8:
        out = node.outputs[0]
        if g.tensors[out].shape == shape and len(chain) > 1:
            return chain
        consumers = g.consumers(out)
        if out in g.outputs or len(consumers) != 1 or consumers[0].op not in _MOVES:
            return None
        node = consumers[0]
        chain.append(node)
    return None


def _channel_permutation(g: Graph, chain: list[Node], shape) -> np.ndarray | None:
    """perm such that the chain's result is x[:, perm], or None if the chain moves more than channels."""
    n, c, h, w = shape
    ids = np.arange(n * c * h * w).reshape(shape)
    v = ids
    for node in chain:
        if node.op == "Transpose":
            v = np.transpose(v, node.attr("perm", tuple(reversed(range(v.ndim)))))
        else:
            v = v.reshape(g.tensors[node.outputs[0]].shape)
    perm = (v[0, :, 0, 0] // (h * w)) % c
    if np.array_equal(perm, np.arange(c)) or not np.array_equal(v, ids[:, perm]):
        return None
    return perm.astype(np.int64)
