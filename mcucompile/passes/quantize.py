"""Float graph + observed ranges -> int8 graph: activation scales per tensor, weights per channel, int32 biases.

Each op's OpDef says which inputs are weights (and along which axis) and which is the bias; its quant rule
says where the output's scale comes from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import numpy as np

from .. import quant
from ..ir import CompileError, Graph, Node, QuantParams, Tensor
from ..ops import registry

SOFTMAX_QUANT = QuantParams.per_tensor(1.0 / 256.0, -128)  # TFLite's fixed int8 softmax output


def quantize(g: Graph, ranges: Mapping[str, tuple[float, float]]) -> Graph:
    tensors = dict(g.tensors)

    def calibrated(name: str) -> QuantParams:
        if name not in ranges:
            raise CompileError(f"internal: tensor '{name}' has no calibration range")
        lo, hi = ranges[name]
        if not (np.isfinite(lo) and np.isfinite(hi)):
            raise CompileError(f"tensor '{name}' reached NaN or infinity during calibration; check the model and data")
        return quant.choose_qparams(lo, hi)

    for name in g.inputs:
        tensors[name] = replace(tensors[name], dtype="int8", quant=calibrated(name))
    nodes = []
    for node in g.nodes:
        op = registry.get(node.op, node.name)
        x = tensors[node.inputs[0]]
        inputs = list(node.inputs)
        for index, axis in op.weight_axis.items():
            w = g.const(inputs[index])
            if w is None:
                raise CompileError(f"node '{node.name}' ({node.op}): input {index} must be a constant weight")
            q, wq = quant.quantize_weights_per_channel(w, axis)
            name = f"{node.name}::weight_q"
            tensors[name] = Tensor(name, w.shape, "int8", data=q, quant=wq)
            inputs[index] = name
            if op.bias_input is not None:
                while len(inputs) <= op.bias_input:
                    inputs.append("")
                b = g.const(inputs[op.bias_input]) if inputs[op.bias_input] else np.zeros(w.shape[axis], np.float32)
                name = f"{node.name}::bias_q"
                tensors[name] = Tensor(name, b.shape, "int32", data=quant.quantize_bias(b, x.quant.s, wq.scale))
                inputs[op.bias_input] = name
        for out in node.outputs:
            if not out:
                continue
            rule = op.quant
            q = calibrated(out) if rule == "calibrated" else SOFTMAX_QUANT if rule == "softmax" else x.quant
            tensors[out] = replace(tensors[out], dtype="int8", quant=q)
        nodes.append(Node(node.op, node.name, tuple(inputs), node.outputs, node.attrs))
    return g.rewrite(nodes, tensors)
