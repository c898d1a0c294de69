"""The op registry: each op's float reference, quantization rule and lowering, keyed by op type.

Kernel references (the bit-exact numpy spec of each C kernel) are registered here too, by kernel name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from ..ir import CompileError, Graph, KernelCall, Node

# How an op's int8 output gets its quantization parameters:
#   "calibrated": from the observed float range;  "same": the input's (max pool, clamp, views);
#   "softmax": the fixed TFLite convention scale 1/256, zero point -128.
QuantRule = Literal["calibrated", "same", "softmax"]

FloatReference = Callable[..., list[np.ndarray]]  # (node, *input arrays) -> output arrays, NCHW float32
KernelReference = Callable[[KernelCall, list[np.ndarray]], np.ndarray]  # physical-layout int8 in and out


Lowering = Callable[[Node, Graph], list[KernelCall]]  # (node, quantized graph) -> kernel calls
Check = Callable[[Node, Graph], "str | None"]  # (node, float graph) -> why it cannot be compiled, or None


@dataclass(frozen=True)
class OpDef:
    onnx_type: str
    reference: FloatReference
    quant: QuantRule = "calibrated"
    weight_axis: Mapping[int, int] = field(default_factory=dict)  # input index -> per-channel axis
    bias_input: int | None = None  # int32 bias, scale = s_in * s_w[c]
    # Per output channel, the weight scale from the per-axis ones (None: the same; a grouped ConvTranspose's
    # weight axis holds one group's channels, so its scales repeat per group)
    output_scales: Callable[[Node, np.ndarray], np.ndarray] | None = None
    lower: Lowering | None = None  # None: a view (Reshape & co.) or a pass must remove it first
    is_view: bool = False  # output aliases the input's bytes when the layout allows it
    fusable_activation: bool = False  # a following Relu/Clip may become this op's clamp
    check: Check | None = None  # attribute/shape/dtype limits, checked on the imported graph before any pass


_OPS: dict[str, OpDef] = {}
_KERNELS: dict[str, KernelReference] = {}
_WRITES: dict[str, Callable[[KernelCall], np.ndarray]] = {}  # kernel -> mask of its result's bytes it stores


def register(op: OpDef) -> OpDef:
    if op.onnx_type in _OPS:
        raise ValueError(f"op {op.onnx_type} is already registered")
    _OPS[op.onnx_type] = op
    return op


def register_kernel(
    name: str, writes: Callable[[KernelCall], np.ndarray] | None = None
) -> Callable[[KernelReference], KernelReference]:
    """`writes`: a bool mask over the reference's flat result, the bytes the C kernel stores (default: all)."""

    def deco(fn: KernelReference) -> KernelReference:
        if name in _KERNELS:
            raise ValueError(f"kernel {name} is already registered")
        _KERNELS[name] = fn
        if writes is not None:
            _WRITES[name] = writes
        return fn

    return deco


def is_supported(op_type: str) -> bool:
    return op_type in _OPS


def get(op_type: str, node_name: str = "?") -> OpDef:
    try:
        return _OPS[op_type]
    except KeyError:
        raise CompileError(
            f"node '{node_name}': operator {op_type} is not supported (supported: {', '.join(sorted(_OPS))})"
        ) from None


def kernel_reference(kernel: str) -> KernelReference:
    return _KERNELS[kernel]


def store_output(call: KernelCall, values: np.ndarray, out: np.ndarray, offset: int = 0) -> None:
    """Put a kernel reference's result into `out` (the flat int8 buffer the output lives in) as the C kernel
    stores it: from byte `offset`, pixel after pixel `output_stride` elements apart when the call has a non-zero
    one (out_dims[3] channels each), and only the bytes it writes (see register_kernel); the others keep their value.
    """
    values = np.asarray(values, np.int8).ravel()
    index = np.arange(values.size)
    stride = call.params.get("output_stride", 0)
    if stride:
        channels = call.params["out_dims"][3]
        index = index // channels * stride + index % channels
    if call.kernel in _WRITES:
        keep = _WRITES[call.kernel](call).ravel()
        index, values = index[keep], values[keep]
    out[offset + index] = values


def supported_ops() -> list[str]:
    return sorted(_OPS)


def is_constant_operand(g: Graph, name: str) -> bool:
    """A constant, or (in a QDQ model before fold_qdq) a DequantizeLinear of one or of a QuantizeLinear of one
    (float weights with their quantization, as PyTorch exports them)."""
    if g.is_const(name):
        return True
    producer = g.producer(name)
    if producer is None or producer.op not in ("DequantizeLinear", "QuantizeLinear"):
        return False
    return is_constant_operand(g, producer.inputs[0])


def attr_ints(node: Node, key: str, default: Any) -> tuple[int, ...]:
    value = node.attr(key, default)
    return tuple(int(v) for v in value)
