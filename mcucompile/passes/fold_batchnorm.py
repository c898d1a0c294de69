"""BatchNormalization -> folded into the producing Conv/ConvTranspose/Gemm, or a depthwise 1x1 Conv elsewhere."""

from __future__ import annotations

import numpy as np

from ..ir import CompileError, Graph, Node, Tensor
from ..ops import registry
from ..ops.batchnorm import batchnorm_scale_shift


def fold_batchnorm(g: Graph) -> Graph:
    """Conv/Gemm -> BN  ==>  Conv/Gemm(W * s, (B - mean) * s + beta),  s = gamma / sqrt(var + eps).

    Folds only if the producer's output feeds nothing but the BN and all parameters are constants. The fused
    node takes over the BN's output name. Any other BN on a 4-D tensor becomes a depthwise 1x1 Conv.
    """
    for bn in [n for n in g.nodes if n.op == "BatchNormalization"]:
        params = [g.const(t) for t in bn.inputs[1:5]]
        if any(p is None for p in params):
            raise CompileError(
                f"node '{bn.name}' (BatchNormalization): scale, bias, mean and variance must be constants"
            )
        if len(bn.outputs) > 1 and any(bn.outputs[1:]):
            raise CompileError(f"node '{bn.name}' (BatchNormalization): training mode outputs are not supported")
        scale, shift = batchnorm_scale_shift(bn, *params)
        producer = g.producer(bn.inputs[0])
        new: dict[str, Tensor] = {}
        if _foldable(g, producer, bn):
            w = g.const(producer.inputs[1]).astype(np.float64)
            b_in = producer.inputs[2] if len(producer.inputs) > 2 else ""
            axis = registry.get(producer.op).weight_axis[1]  # output channels: 1 for ConvTranspose, else 0
            b = g.const(b_in).astype(np.float64) if b_in else np.zeros(w.shape[axis])
            w_name, b_name = f"{producer.name}::weight_bn", f"{producer.name}::bias_bn"
            w_scaled = w * scale.reshape([-1 if i == axis else 1 for i in range(w.ndim)])
            new[w_name] = Tensor(w_name, w.shape, "float32", data=w_scaled.astype(np.float32))
            new[b_name] = Tensor(b_name, b.shape, "float32", data=(b * scale + shift).astype(np.float32))
            fused = Node(producer.op, producer.name, (producer.inputs[0], w_name, b_name), bn.outputs, producer.attrs)
            nodes = [fused if n is producer else n for n in g.nodes if n is not bn]
        else:
            nodes = [n for m in g.nodes for n in (_as_depthwise_conv(g, bn, scale, shift, new) if m is bn else [m])]
        g = g.rewrite(nodes, new)
    return g


def _foldable(g: Graph, producer: Node | None, bn: Node) -> bool:
    if producer is None or producer.op not in ("Conv", "ConvTranspose", "Gemm") or producer.attr("activation"):
        return False
    if producer.op == "Gemm" and producer.attr("transB", 0) != 1:
        return False  # canonicalize made every constant-weight Gemm transB=1; anything else stays unfused
    return (
        len(g.consumers(bn.inputs[0])) == 1
        and bn.inputs[0] not in g.outputs
        and g.const(producer.inputs[1]) is not None
        and (len(producer.inputs) < 3 or not producer.inputs[2] or g.const(producer.inputs[2]) is not None)
    )


def _as_depthwise_conv(g: Graph, bn: Node, scale: np.ndarray, shift: np.ndarray, new: dict[str, Tensor]) -> list[Node]:
    """y = x * scale + shift per channel as a depthwise 1x1 Conv; a tensor of another rank (BatchNorm1d on (N, C)
    or (N, C, L) outside a lifted 1-D network, BatchNorm3d) runs on its (N, C, 1, rest) view."""
    x = g.tensors[bn.inputs[0]]
    if len(x.shape) < 2:
        raise CompileError(f"node '{bn.name}' (BatchNormalization): input '{x.name}' has rank {len(x.shape)}; "
                           "BatchNormalization needs (N, C, ...)")
    c = x.shape[1]
    w_name, b_name = f"{bn.name}::weight", f"{bn.name}::bias"
    new[w_name] = Tensor(w_name, (c, 1, 1, 1), "float32", data=scale.reshape(c, 1, 1, 1).astype(np.float32))
    new[b_name] = Tensor(b_name, (c,), "float32", data=shift.astype(np.float32))
    attrs = {"group": c, "kernel_shape": (1, 1)}
    if len(x.shape) == 4:
        return [Node("Conv", bn.name, (bn.inputs[0], w_name, b_name), bn.outputs[:1], attrs)]
    shape4 = (x.shape[0], c, 1, int(np.prod(x.shape[2:], dtype=np.int64)))
    x4, y4, y = f"{bn.name}::x_4d", f"{bn.name}::y_4d", bn.outputs[0]
    new[x4], new[y4] = Tensor(x4, shape4, x.dtype), Tensor(y4, shape4, x.dtype)
    for name, shape in ((f"{x4}::shape", shape4), (f"{y}::shape", x.shape)):
        new[name] = Tensor(name, (len(shape),), "int64", data=np.array(shape, np.int64))
    return [
        Node("Reshape", f"{bn.name}::to_4d", (bn.inputs[0], f"{x4}::shape"), (x4,)),
        Node("Conv", bn.name, (x4, w_name, b_name), (y4,), attrs),
        Node("Reshape", f"{bn.name}::back", (y4, f"{y}::shape"), (y,)),
    ]
