"""Clip (Relu, ReLU6, any bounds) after a Conv/Gemm/Add -> the producer's `activation` clamp."""

from __future__ import annotations

import math

from ..ir import Graph, Node
from ..ops import registry


def fuse_activation(g: Graph) -> Graph:
    """Fires when the producer's output feeds only the Clip and is not a graph output; the producer takes over
    the Clip's output name, so it is calibrated after the clamp (TFLite's fused activation)."""
    for clip in [n for n in g.nodes if n.op == "Clip"]:
        producer = g.producer(clip.inputs[0])
        if producer is None or not registry.is_supported(producer.op):
            continue
        if not registry.get(producer.op).fusable_activation:
            continue
        if len(g.consumers(clip.inputs[0])) != 1 or clip.inputs[0] in g.outputs:
            continue
        lo, hi = producer.attr("activation", (-math.inf, math.inf))
        bounds = (max(lo, float(clip.attr("min", -math.inf))), min(hi, float(clip.attr("max", math.inf))))
        fused = Node(
            producer.op, producer.name, producer.inputs, clip.outputs, {**producer.attrs, "activation": bounds}
        )
        g = g.rewrite([fused if n is producer else n for n in g.nodes if n is not clip])
    return g
