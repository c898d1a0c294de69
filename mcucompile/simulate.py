"""numpy execution: the float graph (calibration, pass tests) and the int8 program (the bit-exact oracle of the C)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .ir import Graph
from .lower import Program
from .ops import registry


def run_float(g: Graph, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every tensor's float value for one sample (batch 1), fused activations applied."""
    values: dict[str, np.ndarray] = {k: t.data for k, t in g.tensors.items() if t.data is not None}
    values.update({k: np.asarray(v, np.float32).reshape(g.tensors[k].shape) for k, v in feeds.items()})
    for node in g.nodes:
        op = registry.get(node.op, node.name)
        if op.is_view:
            outs = [values[node.inputs[0]].reshape(g.tensors[node.outputs[0]].shape)]
        else:
            outs = op.reference(node, *[values[t] if t else None for t in node.inputs])
        clamp = node.attr("activation")
        for name, v in zip(node.outputs, outs):
            if name:
                values[name] = np.clip(v, *clamp).astype(np.float32) if clamp else v
    return values


def run_program(program: Program, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """int8 inputs -> int8 outputs (ONNX shapes), running each kernel call's numpy reference."""
    buffers: dict[str, np.ndarray] = {}
    for name, user in zip(program.graph.inputs, program.user_inputs):
        buffers[user] = np.asarray(feeds[name], np.int8).ravel()  # the caller's buffer: ONNX element order
    for call in program.calls:
        ins = [buffers[program.root(t)] for t in call.inputs]  # never a slice: only its (removed) concat read it
        out = registry.kernel_reference(call.kernel)(call, ins)
        root, offset = program.base(call.outputs[0])
        buffer = buffers.setdefault(root, np.zeros(program.sizes[root], np.int8))  # slices fill it call by call
        registry.store_output(call, out, buffer, offset)
    return {
        name: buffers[program.root(user)].reshape(program.graph.tensors[name].shape)
        for name, user in zip(program.graph.outputs, program.user_outputs)
    }
