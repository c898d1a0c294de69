"""Softmax written out with Exp, ReduceMax, Sub, ReduceSum and Div, and LogSoftmax -> one Softmax node.

- exp(x - ReduceMax(x)) / ReduceSum(exp(x - ReduceMax(x))) and exp(x) / ReduceSum(exp(x)), both reductions
  over the last axis with keepdims=1, become Softmax(x, axis=-1), which runs TFLite's int8 softmax
  (ops/softmax.py) instead of an exp table, a sum and a division by a computed tensor (which does not lower).
  Only exact matches fold: the same x throughout, no intermediate read by another node or a graph output, and
  a Softmax that lowers (ops/softmax.check_softmax); anything else is left as it is.
- LogSoftmax(x) becomes Softmax(x) -> Log; the Log is then a lookup table of the softmax's int8 output (scale
  1/256, zero point -128; log 0 saturates to the most negative output value). Log(Softmax(x)) already is that.

Runs after canonicalize and before fuse_activation and fuse_pointwise, so the Exp is still an Exp node.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


from ..ir import Graph, Node, Tensor
from ..ops.softmax import check_softmax, runs_in_place


@dataclass(frozen=True)
class SoftmaxPattern:
    x: str
    nodes: tuple[Node, ...]  # in graph order; the last (the Div) writes the result

    @property
    def softmax(self) -> Node:
        div = self.nodes[-1]
        return Node("Softmax", div.name, (self.x,), div.outputs, {"axis": -1})


def _reduces_last_axis(g: Graph, node: Node | None, op: str, x: str) -> bool:
    if node is None or node.op != op or node.inputs[0] != x or int(node.attr("keepdims", 1)) != 1:
        return False
    rank = len(g.tensors[x].shape)
    axes = node.attr("axes")
    if axes is None and len(node.inputs) > 1 and node.inputs[1]:  # axes as an input (before canonicalize)
        const = g.const(node.inputs[1])
        if const is None:
            return False
        axes = const.ravel()
    if axes is None or len(axes) == 0:
        if node.attr("noop_with_empty_axes", 0):
            return False
        axes = range(rank)
    return rank > 0 and {int(a) % rank for a in axes} == {rank - 1}


def _match(g: Graph, div: Node) -> SoftmaxPattern | None:
    if div.op != "Div" or len(div.inputs) != 2:
        return None
    e, s = div.inputs
    exp, total = g.producer(e), g.producer(s)
    if exp is None or exp.op != "Exp" or not _reduces_last_axis(g, total, "ReduceSum", e):
        return None
    candidates = [SoftmaxPattern(exp.inputs[0], (exp, total, div))]
    sub = g.producer(exp.inputs[0])
    peak = g.producer(sub.inputs[1]) if sub is not None and sub.op == "Sub" else None
    if peak is not None and _reduces_last_axis(g, peak, "ReduceMax", sub.inputs[0]):
        candidates.insert(0, SoftmaxPattern(sub.inputs[0], (peak, sub, exp, total, div)))  # the larger first
    return next((p for p in candidates if _is_exact(g, p)), None)


def _is_exact(g: Graph, p: SoftmaxPattern) -> bool:
    """x is a computed tensor of the result's shape, no intermediate is read elsewhere, and the Softmax lowers."""
    if g.is_const(p.x) or g.tensors[p.x].shape != g.tensors[p.nodes[-1].outputs[0]].shape:
        return False
    inside = {n.name for n in p.nodes}
    for n in p.nodes[:-1]:
        if n.outputs[0] in g.outputs or any(c.name not in inside for c in g.consumers(n.outputs[0])):
            return False
    return check_softmax(p.softmax, g) is None


def softmax_patterns(g: Graph) -> list[SoftmaxPattern]:
    """Every written-out softmax of `g` that this pass folds (the support check lets their nodes through)."""
    return [p for p in (_match(g, n) for n in g.nodes if n.op == "Div") if p is not None]


def fold_softmax(g: Graph) -> Graph:
    replaced: dict[str, Node] = {}  # the Div of each pattern -> its Softmax
    removed: set[str] = set()
    new: dict[str, Tensor] = {}
    for p in softmax_patterns(g):
        replaced[p.nodes[-1].name] = p.softmax
        removed.update(n.name for n in p.nodes[:-1])
    nodes = []
    for n in g.nodes:
        if n.op == "LogSoftmax":
            y = g.tensors[n.outputs[0]]
            probs = f"{n.name}::softmax"
            new[probs] = Tensor(probs, y.shape, "float32")
            nodes += [
                Node("Softmax", f"{n.name}::softmax", n.inputs[:1], (probs,), {"axis": n.attr("axis", -1)}),
                Node("Log", n.name, (probs,), n.outputs, {}),
            ]
        elif n.name not in removed:
            nodes.append(replaced.get(n.name, n))
    if not replaced and not new:
        return g
    return g.rewrite(nodes, new)


def move_softmax_axis(g: Graph) -> Graph:
    """Softmax over an axis that is not innermost in memory -> Transpose, Softmax over the innermost, Transpose back.

    The transposed tensor has the axis where the kernel walks rows: last, or second (channels) for rank 4.
    """
    nodes, new = [], {}
    for n in g.nodes:
        x = g.tensors[n.inputs[0]] if n.op == "Softmax" else None
        if x is None or runs_in_place(x.shape, int(n.attr("axis", -1))):
            nodes.append(n)
            continue
        rank, axis = len(x.shape), int(n.attr("axis", -1)) % len(x.shape)
        target = 1 if rank == 4 else rank - 1
        rest = [a for a in range(rank) if a != axis]
        perm = (*rest[:target], axis, *rest[target:])
        back = tuple(perm.index(a) for a in range(rank))
        shape = tuple(x.shape[a] for a in perm)
        t_in, t_out = f"{n.name}::axis_in", f"{n.name}::axis_out"
        new[t_in] = Tensor(t_in, shape, x.dtype)
        new[t_out] = replace(g.tensors[n.outputs[0]], name=t_out, shape=shape)
        nodes += [
            Node("Transpose", f"{n.name}::to_axis", (x.name,), (t_in,), {"perm": perm}),
            Node("Softmax", n.name, (t_in,), (t_out,), {"axis": target}),
            Node("Transpose", f"{n.name}::from_axis", (t_out,), n.outputs, {"perm": back}),
        ]
    return g.rewrite(nodes, new) if new else g
