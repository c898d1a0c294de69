"""Group normalisation as one node, with the affine transform that follows it folded in.

- PyTorch's GroupNorm export, x -> Reshape (N, G, M) -> InstanceNormalization -> Reshape (x's shape), becomes
  GroupNormalization(x) with num_groups = G (its per-group scale and bias repeated per channel), on x's own
  layout: no copies around it.
- A Mul and then an Add by constants per channel (or scalars) right after an Instance- or GroupNormalization
  (how GroupNorm's gamma and beta export) fold into its per-channel scale and bias.
Fires only where the intermediate tensors are read by nothing else and are not graph outputs.
"""

from __future__ import annotations

import numpy as np

from ..ir import Graph, Node, Tensor
from ..ops.norm import per_channel

VIEWS = ("Reshape", "Flatten", "Squeeze", "Unsqueeze")
NORMS = ("InstanceNormalization", "GroupNormalization")


def fold_norm(g: Graph) -> Graph:
    g = _fold_group_pattern(g)
    return _fold_affine(g)


def _only_reader(g: Graph, tensor: str) -> Node | None:
    readers = g.consumers(tensor)
    return readers[0] if len(readers) == 1 and tensor not in g.outputs else None


def _fold_group_pattern(g: Graph) -> Graph:
    nodes, new = list(g.nodes), {}
    for norm in [n for n in g.nodes if n.op == "InstanceNormalization"]:
        before = g.producer(norm.inputs[0])
        after = _only_reader(g, norm.outputs[0])
        if before is None or before.op not in VIEWS or after is None or after.op not in VIEWS:
            continue
        x = g.tensors[before.inputs[0]]
        r, y = g.tensors[norm.inputs[0]], g.tensors[after.outputs[0]]
        if _only_reader(g, r.name) is not norm or len(x.shape) < 3 or y.shape != x.shape or len(r.shape) != 3:
            continue
        n, groups, _ = r.shape
        if n != x.shape[0] or x.shape[1] % groups or not all(g.is_const(t) for t in norm.inputs[1:3]):
            continue
        inputs = [x.name]
        for t, what in zip(norm.inputs[1:3], ("scale", "bias")):  # per group -> per channel
            value = np.repeat(np.asarray(g.const(t), np.float64).ravel(), x.shape[1] // groups)
            inputs.append(f"{norm.name}::{what}")
            new[inputs[-1]] = Tensor(inputs[-1], value.shape, "float32", data=value)
        attrs = {"num_groups": groups, "epsilon": norm.attr("epsilon", 1e-5)}
        grouped = Node("GroupNormalization", norm.name, tuple(inputs), after.outputs, attrs)
        nodes = [grouped if m is norm else m for m in nodes if m is not before and m is not after]
    return g.rewrite(nodes, new) if new else g


def _channel_vector(value: np.ndarray, rank: int, channels: int) -> np.ndarray | None:
    """A constant that broadcasts per channel (axis 1) or as a scalar onto a rank-`rank` tensor, as a vector."""
    value = np.asarray(value, np.float64)
    if value.ndim > rank:
        return None
    shape = (1,) * (rank - value.ndim) + value.shape
    if any(d != 1 for i, d in enumerate(shape) if i != 1) or shape[1] not in (1, channels):
        return None
    return np.broadcast_to(value.reshape(-1), (channels,)).copy()


def _fold_affine(g: Graph) -> Graph:
    changed = True
    while changed:
        changed = False
        for norm in [n for n in g.nodes if n.op in NORMS]:
            op = _only_reader(g, norm.outputs[0])
            if op is None or op.op not in ("Mul", "Add") or len(op.inputs) != 2:
                continue
            other = op.inputs[1] if op.inputs[0] == norm.outputs[0] else op.inputs[0]
            channels = g.tensors[norm.inputs[0]].shape[1]
            rank = len(g.tensors[norm.inputs[0]].shape)
            vector = _channel_vector(g.const(other), rank, channels) if g.is_const(other) else None
            if vector is None or g.tensors[op.outputs[0]].shape != g.tensors[norm.outputs[0]].shape:
                continue
            scale = per_channel(norm, g.const(norm.inputs[1]), channels)
            bias = per_channel(norm, g.const(norm.inputs[2]), channels)
            scale, bias = (scale * vector, bias * vector) if op.op == "Mul" else (scale, bias + vector)
            names = (f"{norm.name}::scale_{op.name}", f"{norm.name}::bias_{op.name}")
            new = {t: Tensor(t, (channels,), "float32", data=v) for t, v in zip(names, (scale, bias))}
            folded = Node(norm.op, norm.name, (norm.inputs[0], *names), op.outputs, norm.attrs)
            g = g.rewrite([folded if n is norm else n for n in g.nodes if n is not op], new)
            changed = True
            break
    return g
