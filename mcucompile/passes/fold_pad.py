"""A zero Pad of H/W feeding a Conv (or an AveragePool with count_include_pad=1) becomes the consumer's pads.

Exact: the consumer's padded taps read real 0, which is what the Pad wrote. Only folded when the Pad is
constant-mode with value 0, pads only H and W by non-negative amounts, and its output has that one consumer
(and no other use, and no quantization of its own from a QDQ model that differs from its input's). MaxPool is
never a target: its padding means -inf, not 0. AveragePool with ceil_mode is skipped, since ONNX's rule that
the last window must start inside the image (or the begin pad) sees a different size after folding.
"""

from __future__ import annotations

import numpy as np

from ..ir import CompileError, Graph, Node
from ..ops.pad import graph_pad_spec
from ..ops.registry import attr_ints


def _same_quant(g: Graph, a: str, b: str) -> bool:
    qa, qb = g.tensors[a].quant, g.tensors[b].quant
    if qb is None:
        return True
    return qa is not None and np.array_equal(qa.scale, qb.scale) and np.array_equal(qa.zero_point, qb.zero_point)


def _foldable_into(consumer: Node) -> bool:
    auto_pad = consumer.attr("auto_pad", "NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
    if auto_pad not in ("NOTSET", "VALID") or len(attr_ints(consumer, "kernel_shape", (0, 0))) != 2:
        return False
    if consumer.op == "Conv":
        return True
    return consumer.op == "AveragePool" and bool(consumer.attr("count_include_pad", 0)) and not consumer.attr(
        "ceil_mode", 0
    )


def fold_pad(g: Graph) -> Graph:
    for pad in [n for n in g.nodes if n.op == "Pad"]:
        x, out = pad.inputs[0], pad.outputs[0]
        if len(g.tensors[x].shape) != 4 or out in g.outputs:
            continue
        try:
            spec = graph_pad_spec(pad, g)
        except CompileError:
            continue  # the support check reports it
        if spec.mode != "constant" or spec.value != 0.0:
            continue
        if any(spec.before[:2]) or any(spec.after[:2]) or min(spec.before + spec.after) < 0:
            continue
        consumers = g.consumers(out)
        if len(consumers) != 1 or consumers[0].inputs[0] != out or out in consumers[0].inputs[1:]:
            continue
        consumer = consumers[0]
        if not _foldable_into(consumer) or not _same_quant(g, x, out):
            continue
        auto_pad = consumer.attr("auto_pad", "NOTSET")
        old = (0, 0, 0, 0) if auto_pad in ("VALID", b"VALID") else attr_ints(consumer, "pads", (0, 0, 0, 0))
        pads = (
            old[0] + spec.before[2],
            old[1] + spec.before[3],
            old[2] + spec.after[2],
            old[3] + spec.after[3],
        )
        folded = Node(consumer.op, consumer.name, (x, *consumer.inputs[1:]), consumer.outputs, consumer.attrs)
        folded = folded.with_attrs(pads=pads, auto_pad="NOTSET")
        g = g.rewrite([folded if n is consumer else n for n in g.nodes if n is not pad])
    return g
