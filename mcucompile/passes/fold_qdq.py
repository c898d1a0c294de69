"""QuantizeLinear / DequantizeLinear -> quantization parameters on the tensors of a float graph.

A pre-quantized (QDQ) model says how every tensor is quantized; this pass removes the Q/DQ nodes and keeps
that information as `Tensor.quant`, which the quantize pass then honours instead of calibrating:
- DequantizeLinear of a constant (int8/uint8 weights, int32 biases) becomes a float64 constant that holds
  (q - zero_point) * scale exactly, with the scales attached;
- QuantizeLinear of a constant (float weights + Q) is evaluated first, so the same applies;
- Q(x) -> DQ pairs on activations disappear and x carries their scale and zero point;
- integer graph inputs (and int8 views of them, e.g. a Transpose from NHWC) take the parameters of the
  DequantizeLinear that reads them.
uint8 tensors are mapped exactly to int8 by moving the zero point down by 128.
"""

from __future__ import annotations

import numpy as np

from ..ir import CompileError, Graph, Node, QuantParams, Tensor
from ..ops import registry

QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")


def is_qdq(g: Graph) -> bool:
    return any(n.op in QDQ_OPS for n in g.nodes)


def _params(g: Graph, node: Node) -> tuple[np.ndarray, np.ndarray, int | None, bool]:
    """(scale float32, zero point in the int8 domain, axis or None, was uint8)."""
    scale = g.const(node.inputs[1])
    zp = g.const(node.inputs[2]) if len(node.inputs) > 2 and node.inputs[2] else None
    if scale is None or (len(node.inputs) > 2 and node.inputs[2] and zp is None):
        raise CompileError(f"node '{node.name}' ({node.op}): scale and zero point must be constants")
    if zp is None:
        zp = np.zeros_like(scale, dtype=np.int8 if node.op == "DequantizeLinear" else np.uint8)
    if zp.dtype not in (np.int8, np.uint8, np.int32):
        raise CompileError(f"node '{node.name}' ({node.op}): {zp.dtype} quantization is not supported (int8/uint8)")
    unsigned = zp.dtype == np.uint8
    zp_int8 = zp.astype(np.int32) - (128 if unsigned else 0)
    axis = int(node.attr("axis", 1)) if scale.size > 1 else None
    if np.any(scale <= 0) or not np.all(np.isfinite(scale)):
        raise CompileError(f"node '{node.name}' ({node.op}): scales must be positive and finite")
    return scale.astype(np.float32).ravel(), zp_int8.ravel(), axis, unsigned


def _dequantize_const(data: np.ndarray, scale: np.ndarray, zp: np.ndarray, axis: int | None, unsigned: bool):
    q = data.astype(np.int64) - (128 if unsigned else 0)
    shape = [1] * data.ndim
    if axis is not None:
        shape[axis % data.ndim] = -1
    return (q - zp.reshape(shape)) * scale.astype(np.float64).reshape(shape)


def fold_qdq(g: Graph) -> Graph:
    """Fires only on graphs with Q/DQ nodes; a float model passes through unchanged."""
    if not is_qdq(g):
        return g
    tensors = dict(g.tensors)
    rename: dict[str, str] = {}
    given: dict[str, QuantParams] = {}
    nodes: list[Node] = []

    def resolve(name: str) -> str:
        while name in rename:
            name = rename[name]
        return name

    def attach(name: str, q: QuantParams, where: Node) -> None:
        old = given.get(name)
        if old is not None and not _same(old, q):
            raise CompileError(
                f"node '{where.name}' ({where.op}): tensor '{name}' is quantized twice with different parameters"
            )
        given[name] = q

    for node in g.nodes:
        if node.op not in QDQ_OPS:
            nodes.append(node)
            continue
        scale, zp, axis, unsigned = _params(g, node)
        src, out = resolve(node.inputs[0]), node.outputs[0]
        data = tensors[src].data if src in tensors else None
        if node.op == "QuantizeLinear" and data is not None:
            # float weights + Q: ONNX QuantizeLinear rounds halves to even and saturates.
            shape = [1] * data.ndim
            if axis is not None:
                shape[axis % data.ndim] = -1
            lo, hi = (0, 255) if unsigned else (-128, 127)
            raw = np.clip(np.rint(data / scale.reshape(shape)) + zp.reshape(shape) + (128 if unsigned else 0), lo, hi)
            tensors[out] = Tensor(
                out,
                tuple(data.shape),
                "uint8" if unsigned else "int8",
                data=raw.astype(np.uint8 if unsigned else np.int8),
            )
            continue
        if node.op == "DequantizeLinear" and data is not None:
            value = _dequantize_const(data, scale, zp, axis, unsigned)
            quant = QuantParams(scale, zp.astype(np.int32), axis)
            tensors[out] = Tensor(out, tuple(data.shape), "float32", data=value, quant=quant)
            continue
        if axis is not None:
            raise CompileError(f"node '{node.name}' ({node.op}): per-axis activation quantization is not supported")
        q = QuantParams(scale, zp.astype(np.int32))
        if node.op == "QuantizeLinear" and src in given and not _same(given[src], q):
            # DQ -> Q with other parameters: an int8 -> int8 requantization (TFLite's QUANTIZE op).
            nodes.append(Node("Requantize", node.name, (src,), (out,)))
            given[out] = q
            continue
        attach(src, q, node)
        rename[out] = src
    outputs = tuple(resolve(t) for t in g.outputs)
    nodes = [Node(n.op, n.name, tuple(resolve(t) if t else t for t in n.inputs), n.outputs, n.attrs) for n in nodes]
    _propagate_through_views(nodes, given)
    for name, q in given.items():
        tensors[name] = Tensor(name, tensors[name].shape, "float32", quant=q)
    return Graph(tuple(nodes), tensors, g.inputs, outputs, g.name).rewrite()


def _same(a: QuantParams, b: QuantParams) -> bool:
    return bool(np.array_equal(a.scale, b.scale) and np.array_equal(a.zero_point, b.zero_point))


def _propagate_through_views(nodes: list[Node], given: dict[str, QuantParams]) -> None:
    """An integer input reshaped or transposed before its DequantizeLinear shares that DequantizeLinear's parameters."""
    for node in reversed(nodes):
        op = registry.get(node.op, node.name) if registry.is_supported(node.op) else None
        if op is not None and op.quant == "same" and node.outputs[0] in given and node.inputs[0] not in given:
            given[node.inputs[0]] = given[node.outputs[0]]
