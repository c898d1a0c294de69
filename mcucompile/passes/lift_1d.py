"""1-D layers onto the 2-D kernels: every rank-3 Conv, ConvTranspose, pool, normalisation and Resize becomes its
rank-4 twin on (N, C, 1, L) (ops/lift.py), between two Reshape views.

A rank-4 tensor lives in NHWC and a rank-3 one row-major, so each of those views is a copy. The pass then
removes the copies between neighbouring layers: a pointwise op (activation, Add/Mul with a constant or of two
lifted tensors, PRelu) that reads lifted tensors only is lifted too, a Pad that only lifted ops read is lifted,
and a view back to rank 4 of a view down to rank 3 reads the rank-4 tensor itself. A TCN or TC-ResNet then runs
on (N, C, 1, L) from its first layer to its last, with one copy at each end, and BatchNorm folding and
activation fusion see Conv -> BatchNormalization -> Clip as in any 2-D network.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..ir import Graph, Node, Tensor
from ..ops.lift import H_AXIS, lift_shape, lifted, lifted_name, needs_lift
from ..ops.lut import is_pointwise

VIEWS = ("Reshape", "Flatten", "Squeeze", "Unsqueeze")


def lift_1d(g: Graph) -> Graph:
    nodes: list[Node] = []
    tensors: dict[str, Tensor] = {}
    down: dict[str, str] = {}  # rank-3 tensor -> the rank-4 tensor it is a view of (the lifted op's output)
    consumers = _consumers(g)

    def shape_const(name: str, shape) -> str:
        tensors[name] = Tensor(name, (len(shape),), "int64", data=np.array(shape, np.int64))
        return name

    def view(src: str, dst: str, name: str) -> Node:
        shape = tensors[dst].shape if dst in tensors else g.tensors[dst].shape
        return Node("Reshape", name, (src, shape_const(f"{name}::shape", shape)), (dst,))

    alias: dict[str, str] = {}  # a model's own view back to rank 4 of a lifted tensor -> that tensor
    for node in g.nodes:
        node = replace(node, inputs=tuple(alias.get(t, t) for t in node.inputs))
        if _undoes_lift(node, g, down, tensors):
            alias[node.outputs[0]] = down[node.inputs[0]]
            continue
        lift = needs_lift(node, g) and (node.op != "Pad" or _feeds_only_lifted(node, g, consumers))
        if not lift and _pointwise_of_lifted(node, g, down):
            node4, new = _lifted_pointwise(node, g, down)
            tensors.update(new)
            nodes.append(node4)
        elif lift:
            node4, new = lifted(node, g)
            tensors.update(new)
            x = node.inputs[0]
            if x in down:
                node4 = replace(node4, inputs=(down[x], *node4.inputs[1:]))
            else:
                nodes.append(view(x, node4.inputs[0], f"{node.name}::to_2d"))
            nodes.append(node4)
        else:
            nodes.append(node)
            continue
        y = node.outputs[0]
        down[y] = node4.outputs[0]
        nodes.append(view(node4.outputs[0], y, f"{node.name}::to_1d"))
    return g.rewrite(nodes, tensors) if tensors else g


def _consumers(g: Graph) -> dict[str, list[Node]]:
    out: dict[str, list[Node]] = {}
    for n in g.nodes:
        for t in n.inputs:
            out.setdefault(t, []).append(n)
    return out


def _undoes_lift(node: Node, g: Graph, down: dict[str, str], lifted_tensors: dict[str, Tensor]) -> bool:
    """A view (e.g. the Unsqueeze of an exported adaptive pool) of a lifted op's rank-3 view back to its shape."""
    x = node.inputs[0] if node.inputs else ""
    return (
        node.op in VIEWS
        and x in down
        and node.outputs[0] not in g.outputs
        and g.tensors[node.outputs[0]].shape == lifted_tensors[down[x]].shape
    )


def _feeds_only_lifted(node: Node, g: Graph, consumers: dict[str, list[Node]]) -> bool:
    """A Pad whose output is read by lifted ops only (a causal or same padding before a Conv1d)."""
    y = node.outputs[0]
    readers = consumers.get(y, [])
    return bool(readers) and y not in g.outputs and all(r.op != "Pad" and needs_lift(r, g) for r in readers)


def _pointwise_of_lifted(node: Node, g: Graph, down: dict[str, str]) -> bool:
    """A pointwise op (or PRelu) on rank-3 tensors whose every computed operand is a view of a lifted one."""
    if not (is_pointwise(node.op) or node.op == "PRelu") or len(node.outputs) != 1:
        return False
    computed = [t for t in node.inputs if t and not g.is_const(t)]
    y = g.tensors[node.outputs[0]]
    return len(y.shape) == 3 and bool(computed) and all(t in down for t in computed)


def _lifted_pointwise(node: Node, g: Graph, down: dict[str, str]) -> tuple[Node, dict[str, Tensor]]:
    """The op on the rank-4 tensors; constants reshaped the same way (a per-channel (C, 1) becomes (C, 1, 1))."""
    new: dict[str, Tensor] = {}
    inputs = []
    for t in node.inputs:
        if not t or t in down:
            inputs.append(down.get(t, t))
            continue
        c = g.tensors[t]
        if c.data.ndim == 0 or c.data.size == 1:
            inputs.append(t)  # a scalar broadcasts the same at any rank
            continue
        name = f"{t}::2d_{node.name}"
        q = c.quant
        if q is not None and q.axis is not None:  # a per-channel QDQ constant: its axis moves with the shape
            axis = q.axis % len(c.shape) + 3 - len(c.shape)
            q = replace(q, axis=axis + (axis >= H_AXIS))
        shape = lift_shape(c.shape)
        new[name] = replace(c, name=name, shape=shape, data=c.data.reshape(shape), quant=q)
        inputs.append(name)
    y = g.tensors[node.outputs[0]]
    out = lifted_name(y.name)
    new[out] = replace(y, name=out, shape=lift_shape(y.shape))
    return replace(node, inputs=tuple(inputs), outputs=(out,)), new
