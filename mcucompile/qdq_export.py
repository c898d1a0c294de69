"""The compiler's own quantized model as a QDQ ONNX file (--export-qdq), to evaluate int8 accuracy in Python.

Every activation gets QuantizeLinear -> DequantizeLinear with the compiler's scale and zero point, weights
are int8 initializers (per output channel) and biases int32 behind DequantizeLinear, and fused activations
come back as Clip nodes. onnxruntime and netron load the result.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .files import write_files
from .ir import Graph, QuantParams
from .ops import registry

EXPORT_OPSET = 13
VIEW_OPS = ("Reshape", "Flatten", "Squeeze", "Unsqueeze")


class _Builder:
    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.count = 0

    def const(self, hint: str, value: np.ndarray) -> str:
        self.count += 1
        name = f"{hint}::c{self.count}"
        self.inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def node(self, op: str, inputs: list[str], output: str, name: str, **attrs) -> str:
        self.nodes.append(helper.make_node(op, inputs, [output], name=name, **attrs))
        return output

    def qdq(self, src: str, q: QuantParams, dst: str, name: str) -> str:
        """src (float) -> Q -> DQ -> dst (float) with per-tensor parameters."""
        scale = self.const(name, np.array(q.s, np.float32))
        zp = self.const(name, np.array(q.zp, np.int8))
        self.node("QuantizeLinear", [src, scale, zp], f"{dst}::q", f"{name}::quantize")
        return self.node("DequantizeLinear", [f"{dst}::q", scale, zp], dst, f"{name}::dequantize")

    def dequantized_const(self, hint: str, data: np.ndarray, scale: np.ndarray, axis: int) -> str:
        zp = np.zeros(scale.shape, np.int8 if data.dtype == np.int8 else np.int32)
        args = [self.const(hint, data), self.const(hint, scale.astype(np.float32)), self.const(hint, zp)]
        return self.node("DequantizeLinear", args, f"{hint}::dequantized", f"{hint}::dequantize", axis=axis)


def export_qdq(g: Graph) -> onnx.ModelProto:
    """The int8 graph `g` (after the quantize pass) as a QDQ ModelProto."""
    b = _Builder()
    real = {}  # IR tensor -> name of its dequantized float value in the export
    inputs = []
    for name in g.inputs:
        t = g.tensors[name]
        inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(t.shape)))
        real[name] = b.qdq(name, t.quant, f"{name}::real", name)
    for node in g.nodes:
        op = registry.get(node.op, node.name)
        args = []
        for i, t in enumerate(node.inputs):
            tensor = g.tensors.get(t) if t else None
            if tensor is None:
                args.append("")
            elif tensor.data is None:
                args.append(real[t])
            elif i in op.weight_axis:
                args.append(b.dequantized_const(f"{node.name}::weight", tensor.data, tensor.quant.scale, 0))
            elif i == op.bias_input:
                w = g.tensors[node.inputs[next(iter(op.weight_axis))]]
                scale = np.float64(np.float32(g.tensors[node.inputs[0]].quant.s)) * w.quant.scale.astype(np.float64)
                args.append(b.dequantized_const(f"{node.name}::bias", tensor.data, scale.astype(np.float32), 0))
            else:
                args.append(b.const(f"{node.name}::input", tensor.data))
        out = node.outputs[0]
        raw = f"{out}::float"
        attrs = {k: v for k, v in node.attrs.items() if k not in ("activation", "min", "max")}
        if node.op in VIEW_OPS:
            shape = b.const(f"{node.name}::shape", np.array(g.tensors[out].shape, np.int64))
            b.node("Reshape", [args[0], shape], raw, node.name)
        elif node.op in ("Clip", "Relu"):
            raw = _clip(b, args[0], raw, node.name, *_bounds(node))
        else:
            b.node(node.op, args, raw, node.name, **attrs)
            if node.attr("activation"):
                raw = _clip(b, raw, f"{out}::clipped", f"{node.name}::activation", *node.attr("activation"))
        real[out] = b.qdq(raw, g.tensors[out].quant, f"{out}::real", out)
    outputs = []
    for name in g.outputs:
        b.node("Identity", [real[name]], name, f"{name}::output")
        outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(g.tensors[name].shape)))
    graph = helper.make_graph(b.nodes, f"{g.name}_qdq", inputs, outputs, b.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", EXPORT_OPSET)], producer_name="mcucompile")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def _bounds(node) -> tuple[float, float]:
    if node.op == "Relu":
        return 0.0, math.inf
    return float(node.attr("min", -math.inf)), float(node.attr("max", math.inf))


def _clip(b: _Builder, src: str, dst: str, name: str, lo: float, hi: float) -> str:
    lo_name = b.const(name, np.array(lo if math.isfinite(lo) else np.finfo(np.float32).min, np.float32))
    hi_name = b.const(name, np.array(hi if math.isfinite(hi) else np.finfo(np.float32).max, np.float32))
    return b.node("Clip", [src, lo_name, hi_name], dst, name)


def write_qdq(g: Graph, path: str | os.PathLike) -> None:
    """Write the QDQ model atomically."""
    write_files({Path(path): export_qdq(g).SerializeToString()}, "the QDQ model", "choose another --export-qdq")
