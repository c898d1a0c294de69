"""Float graph + observed ranges -> int8 graph: activation scales per tensor, weights per channel, int32 biases.

Each op's OpDef says which inputs are weights (and along which axis) and which is the bias; its quant rule
says where the output's scale comes from. Quantization a QDQ model already gives (Tensor.quant, attached by
fold_qdq) is honoured exactly; ranges are only used where it is absent.

As TFLite's converter does, a Concat input takes the Concat output's quantization where that is free (see
concat_shared): the Concat range covers it, and the Concat then copies it without requantizing, or its producer
writes it in place (lower.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import numpy as np

from .. import quant
from ..ir import CompileError, Graph, Node, QuantParams, Tensor
from ..ops import registry
from ..ops.select import BOOL_QUANT

SOFTMAX_QUANT = QuantParams.per_tensor(1.0 / 256.0, -128)  # TFLite's fixed int8 softmax output


def same_quant(a: QuantParams, b: QuantParams) -> bool:
    return bool(np.array_equal(a.scale, b.scale) and np.array_equal(a.zero_point, b.zero_point))


def quantize(
    g: Graph, ranges: Mapping[str, tuple[float, float]], bias_corrections: Mapping[str, np.ndarray] | None = None
) -> Graph:
    """`bias_corrections` (calibrate.bias_corrections): float terms added to a node's bias before it is quantized."""
    tensors = dict(g.tensors)

    def activation_quant(name: str, rule: str = "calibrated", source: QuantParams | None = None) -> QuantParams:
        given = g.tensors[name].quant
        if rule == "same":
            if given is not None and not same_quant(given, source):
                raise CompileError(
                    f"tensor '{name}': the model quantizes it differently from its input, which this op "
                    "requires to be equal (requantization here is not supported yet)"
                )
            return source
        if rule == "softmax":
            if given is not None and not same_quant(given, SOFTMAX_QUANT):
                raise CompileError(f"tensor '{name}': softmax output must use scale 1/256 and zero point -128")
            return SOFTMAX_QUANT
        if given is not None:
            return given
        if name not in ranges:
            raise CompileError(f"tensor '{name}' has no quantization: give calibration data, or complete the QDQ model")
        lo, hi = ranges[name]
        if not (np.isfinite(lo) and np.isfinite(hi)):
            raise CompileError(f"tensor '{name}' reached NaN or infinity during calibration; check the model and data")
        return quant.choose_qparams(lo, hi)

    shared = concat_shared(g)
    for name in g.inputs:
        tensors[name] = replace(tensors[name], dtype="int8", quant=activation_quant(name))
    nodes = []
    for node in g.nodes:
        op = registry.get(node.op, node.name)
        x = tensors[node.inputs[0]]
        inputs = list(node.inputs)
        for index, axis in op.weight_axis.items():
            wq = _quantize_weight(g, node, inputs, index, axis, tensors)
            if op.output_scales is not None:
                wq = QuantParams(op.output_scales(node, wq.scale), op.output_scales(node, wq.zero_point), wq.axis)
            if op.bias_input is not None:
                correction = (bias_corrections or {}).get(node.name)
                _quantize_bias(g, node, inputs, op.bias_input, x.quant, wq, tensors, correction)
        for out in node.outputs:
            if out:
                if g.tensors[out].dtype == "bool":
                    q = BOOL_QUANT  # a mask: 0 or 1 (ops/select.py)
                elif out in shared:
                    q = activation_quant(shared[out])
                else:
                    q = activation_quant(out, op.quant, x.quant)
                tensors[out] = replace(tensors[out], dtype="int8", quant=q)
        nodes.append(Node(node.op, node.name, tuple(inputs), node.outputs, node.attrs))
    return g.rewrite(nodes, tensors)


def concat_shared(g: Graph) -> dict[str, str]:
    """Concat input -> Concat output, for inputs that take the output's quantization: computed by an op with a
    "calibrated" rule, read by nothing but that Concat, not a graph output, and not quantized by a QDQ model."""
    shared: dict[str, str] = {}
    for node in g.nodes:
        if node.op != "Concat":
            continue
        for name in node.inputs:
            producer = g.producer(name)
            if (
                producer is not None
                and registry.get(producer.op, producer.name).quant == "calibrated"
                and g.tensors[name].quant is None
                and name not in g.outputs
                and all(n is node for n in g.consumers(name))
            ):
                shared[name] = node.outputs[0]
    for name, target in shared.items():  # a Concat feeding a Concat: the outermost one's quantization
        while target in shared:
            target = shared[target]
        shared[name] = target
    return shared


def _quantize_weight(g: Graph, node: Node, inputs: list, index: int, axis: int, tensors: dict) -> QuantParams:
    t = g.tensors[inputs[index]] if inputs[index] else None
    if t is None or t.data is None:
        raise CompileError(f"node '{node.name}' ({node.op}): input {index} must be a constant weight")
    w = t.data
    if t.quant is None:
        q, wq = quant.quantize_weights_per_channel(w, axis)
    else:
        if np.any(t.quant.zero_point != 0):
            raise CompileError(f"tensor '{t.name}': weights need zero point 0 (symmetric int8)")
        if t.quant.axis is not None and t.quant.axis % w.ndim != axis:
            raise CompileError(f"tensor '{t.name}': weights are quantized along axis {t.quant.axis}, expected {axis}")
        scale = np.broadcast_to(t.quant.scale, (w.shape[axis],)).astype(np.float32)
        shape = [1] * w.ndim
        shape[axis] = -1
        q = np.clip(quant.round_half_away(w / scale.astype(np.float64).reshape(shape)), -128, 127).astype(np.int8)
        wq = QuantParams(scale, np.zeros(scale.shape, np.int32), axis)
    name = f"{node.name}::weight_q"
    tensors[name] = Tensor(name, w.shape, "int8", data=q, quant=wq)
    inputs[index] = name
    return wq


def _quantize_bias(
    g: Graph, node: Node, inputs: list, index: int, xq: QuantParams, wq: QuantParams, tensors, correction=None
):
    """int32 bias with scale s_in * s_w[c]; a QDQ model's own int32 values are kept when its scale is that one."""
    while len(inputs) <= index:
        inputs.append("")
    t = g.tensors[inputs[index]] if inputs[index] else None
    channels = wq.scale.shape[0]
    b = np.zeros(channels) if t is None else np.broadcast_to(np.asarray(t.data, np.float64).ravel(), (channels,))
    if correction is not None:
        b = b + correction
    expected = np.float64(np.float32(xq.s)) * wq.scale.astype(np.float64)
    given = None if t is None else t.quant
    if given is not None and np.allclose(np.broadcast_to(given.scale, (channels,)), expected, rtol=1e-5, atol=0):
        q = np.clip(
            quant.round_half_away(b / np.broadcast_to(given.scale.astype(np.float64), (channels,))),
            quant.INT32_MIN,
            quant.INT32_MAX,
        ).astype(np.int32)
    else:
        q = quant.quantize_bias(b, xq.s, wq.scale)
    name = f"{node.name}::bias_q"
    tensors[name] = Tensor(name, (channels,), "int32", data=q)
    inputs[index] = name
