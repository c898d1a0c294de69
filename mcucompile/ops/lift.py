"""1-D layers as 2-D ones: a Conv, ConvTranspose, pool, normalisation, Pad or Resize of a rank-3 (N, C, L)
tensor is the same op on (N, C, 1, L), so Conv1d and its neighbours run on the 2-D kernels with H = 1.

`lifted` rewrites one node that way (attributes, weights, pads and scales gain the H axis); the lift_1d pass
applies it to the graph, and each lifted op's `check` judges the lifted node (`accepts_1d`), so `mcucompile
check` and the support check before the passes agree with what the passes will do.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..ir import Graph, Node, Shape, Tensor
from .registry import Check, is_constant_operand

WINDOWED = frozenset({"Conv", "ConvTranspose", "MaxPool", "AveragePool", "LpPool"})
CHANNELWISE = frozenset({"BatchNormalization", "InstanceNormalization", "GroupNormalization", "GlobalAveragePool",
                         "GlobalMaxPool"})
LIFTED_OPS = WINDOWED | CHANNELWISE | {"Pad", "Resize", "Upsample"}
H_AXIS = 2  # where the size-1 axis goes: (N, C, L) -> (N, C, 1, L)


def lift_shape(shape: Shape) -> Shape:
    """(N, C, L) -> (N, C, 1, L); a shorter shape is right-aligned to rank 3 first (ONNX broadcasting)."""
    shape = (1,) * (3 - len(shape)) + tuple(shape)
    return (*shape[:H_AXIS], 1, *shape[H_AXIS:])


def lifted_name(tensor: str) -> str:
    return f"{tensor}::2d"


def needs_lift(node: Node, g: Graph) -> bool:
    """A LIFTED_OPS node on a rank-3 tensor, with constant weights where it has them."""
    x = g.tensors.get(node.inputs[0]) if node.inputs else None
    if node.op not in LIFTED_OPS or x is None or len(x.shape) != 3:
        return False
    return node.op not in ("Conv", "ConvTranspose") or is_constant_operand(g, node.inputs[1])


def _window_attrs(node: Node) -> dict:
    """kernel_shape, strides, dilations, output_padding (k,) -> (1, k); pads (b, e) -> (0, b, 0, e)."""
    attrs = dict(node.attrs)
    for key in ("kernel_shape", "strides", "dilations"):
        if key in attrs:
            attrs[key] = (1, *(int(v) for v in attrs[key]))
    if "output_padding" in attrs:
        attrs["output_padding"] = (0, *(int(v) for v in attrs["output_padding"]))
    if "output_shape" in attrs:
        attrs["output_shape"] = (1, *(int(v) for v in attrs["output_shape"]))
    if "pads" in attrs:
        begin, end = (int(v) for v in attrs["pads"])
        attrs["pads"] = (0, begin, 0, end)
    return attrs


def _pad_vector(pads: np.ndarray) -> np.ndarray:
    """ONNX pads [b0, b1, b2, e0, e1, e2] of a rank-3 tensor -> [b0, b1, 0, b2, e0, e1, 0, e2]."""
    b, e = np.split(np.asarray(pads, np.int64).ravel(), 2)
    return np.concatenate([np.insert(b, H_AXIS, 0), np.insert(e, H_AXIS, 0)])


def lifted(node: Node, g: Graph) -> tuple[Node, dict[str, Tensor]]:
    """The rank-4 twin of a node for which needs_lift holds, and the tensors it reads and writes that are new:
    its data input and output under lifted_name (shapes with the H axis), and its reshaped constants."""
    x, y = g.tensors[node.inputs[0]], g.tensors[node.outputs[0]]
    new = {
        lifted_name(x.name): replace(x, name=lifted_name(x.name), shape=lift_shape(x.shape), data=None),
        lifted_name(y.name): replace(y, name=lifted_name(y.name), shape=lift_shape(y.shape), data=None),
    }
    inputs, attrs = [lifted_name(x.name), *node.inputs[1:]], dict(node.attrs)

    def reshaped(index: int, value: np.ndarray) -> None:
        t = g.tensors[node.inputs[index]]
        name = f"{t.name}::2d_{node.name}"
        new[name] = replace(t, name=name, shape=tuple(value.shape), data=value)
        inputs[index] = name

    if node.op in WINDOWED:
        attrs = _window_attrs(node)
        if node.op in ("Conv", "ConvTranspose") and g.const(node.inputs[1]) is not None:
            w = g.const(node.inputs[1])
            reshaped(1, w.reshape(*w.shape[:2], 1, *w.shape[2:]))
    elif node.op == "Pad":
        if "pads" in attrs:  # opset < 11
            attrs["pads"] = tuple(int(v) for v in _pad_vector(np.asarray(attrs["pads"])))
        elif len(node.inputs) > 3 and node.inputs[3]:  # opset 18 axes: an axis from H on moves one up
            axes = np.asarray(g.const(node.inputs[3])).ravel() % 3
            reshaped(3, np.where(axes >= H_AXIS, axes + 1, axes).astype(np.int64))
        elif g.const(node.inputs[1]) is not None:
            reshaped(1, _pad_vector(g.const(node.inputs[1])))
    elif node.op in ("Resize", "Upsample"):
        for index in range(1, len(node.inputs)):
            value = g.const(node.inputs[index]) if node.inputs[index] else None
            if value is not None and value.size == 3:  # scales or sizes of a rank-3 input
                reshaped(index, np.insert(value.ravel(), H_AXIS, 1).astype(value.dtype))
        if "scales" in attrs:  # Upsample opset 7
            attrs["scales"] = tuple(np.insert(np.asarray(attrs["scales"], np.float32), H_AXIS, 1.0))
    outputs = (lifted_name(y.name), *node.outputs[1:])
    return Node(node.op, node.name, tuple(inputs), outputs, attrs), new


def accepts_1d(check: Check) -> Check:
    """A 2-D op's check that judges a rank-3 node by its lifted twin (what the lift_1d pass compiles)."""

    def judged_lifted(node: Node, g: Graph) -> str | None:
        if needs_lift(node, g):
            node, new = lifted(node, g)
            g = replace(g, tensors={**g.tensors, **new})
        return check(node, g)

    return judged_lifted
