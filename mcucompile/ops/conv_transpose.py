"""ConvTranspose (2-D, any group) -> mcu_conv_transpose_s8, in gather form.

Each output pixel sums the input pixels and taps that reach it, which gives TFLite TRANSPOSE_CONV's int32
sums without its output-sized int32 buffer. Weights are packed [C_OUT, KH, KW, C_IN / group] so the inner loop
reads them in order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import quant
from ..ir import CompileError, Graph, KernelCall, Node
from ..layout import kernel_dims, to_logical
from .conv import MAX_ACCUMULATION_DEPTH, _finish
from .lift import accepts_1d
from .registry import OpDef, attr_ints, is_constant_operand, register, register_kernel


@dataclass(frozen=True)
class Geometry:
    kernel: tuple[int, int]
    strides: tuple[int, int]
    dilations: tuple[int, int]
    pads: tuple[int, int, int, int]  # cropped from the full scattered output: top, left, bottom, right
    out_hw: tuple[int, int]


def geometry(node: Node, x_shape, w_shape) -> Geometry:
    """Pads and output size as ONNX specifies them (explicit pads, auto_pad, or output_shape)."""
    kernel = tuple(int(k) for k in w_shape[2:4])
    strides = attr_ints(node, "strides", (1, 1))
    dilations = attr_ints(node, "dilations", (1, 1))
    out_pad = attr_ints(node, "output_padding", (0, 0))
    auto_pad = node.attr("auto_pad", "NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
    output_shape = attr_ints(node, "output_shape", ())
    pads = list(attr_ints(node, "pads", (0, 0, 0, 0))) if auto_pad == "NOTSET" else [0, 0, 0, 0]
    out_hw = []
    for i in range(2):
        full = strides[i] * (int(x_shape[2 + i]) - 1) + out_pad[i] + (kernel[i] - 1) * dilations[i] + 1
        if output_shape or auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            out = output_shape[i] if output_shape else int(x_shape[2 + i]) * strides[i]
            total = full - out
            # The odd pixel goes to the end only for SAME_UPPER (ONNX spec; onnxruntime agrees).
            start = total // 2 if auto_pad == "SAME_UPPER" else total - total // 2
            pads[i], pads[i + 2] = start, total - start
        out_hw.append(full - pads[i] - pads[i + 2])
    return Geometry(kernel, strides, dilations, tuple(pads), tuple(out_hw))  # type: ignore[arg-type]


def block_diagonal(w: np.ndarray, groups: int) -> np.ndarray:
    """An ONNX grouped weight [C_IN, C_OUT / G, KH, KW] as the full [C_IN, C_OUT, KH, KW] one, zero across groups."""
    c_in, c_out_group = w.shape[:2]
    full = np.zeros((c_in, c_out_group * groups, *w.shape[2:]), w.dtype)
    c_in_group = c_in // groups
    for k in range(groups):
        rows, cols = slice(k * c_in_group, (k + 1) * c_in_group), slice(k * c_out_group, (k + 1) * c_out_group)
        full[rows, cols] = w[rows]
    return full


def conv_transpose_reference(node: Node, x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None) -> list[np.ndarray]:
    geo = geometry(node, x.shape, w.shape)
    y = _scatter(x.astype(np.float64), block_diagonal(w.astype(np.float64), int(node.attr("group", 1))), geo)
    if b is not None:
        y = y + b.astype(np.float64).reshape(1, -1, 1, 1)
    return [y.astype(np.float32)]


def _scatter(x: np.ndarray, w: np.ndarray, geo: Geometry) -> np.ndarray:
    """NCHW x, ONNX weight [C_IN, C_OUT, KH, KW] -> NCHW output: every tap's products added at its place."""
    n, _, h, wd = x.shape
    (kh, kw), (sh, sw), (dh, dw) = geo.kernel, geo.strides, geo.dilations
    pt, pl = geo.pads[0], geo.pads[1]
    oh, ow = geo.out_hw
    full_h = max(pt + oh, (h - 1) * sh + (kh - 1) * dh + 1)  # output_padding may reach past the last tap
    full_w = max(pl + ow, (wd - 1) * sw + (kw - 1) * dw + 1)
    full = np.zeros((n, w.shape[1], full_h, full_w), x.dtype)
    for ky in range(kh):
        for kx in range(kw):
            contrib = np.einsum("nchw,co->nohw", x, w[:, :, ky, kx])
            full[:, :, ky * dh : ky * dh + (h - 1) * sh + 1 : sh, kx * dw : kx * dw + (wd - 1) * sw + 1 : sw] += contrib
    return full[:, :, pt : pt + oh, pl : pl + ow]


def check_conv_transpose(node: Node, g: Graph) -> str | None:
    x_shape, w_shape = g.tensors[node.inputs[0]].shape, g.tensors[node.inputs[1]].shape
    if len(x_shape) != 4 or len(w_shape) != 4:
        return f"only 2-D ConvTranspose (rank-4 NCHW input) is supported, got input shape {x_shape}"
    if not is_constant_operand(g, node.inputs[1]):
        return "the weight must be a constant"
    group, c_in = int(node.attr("group", 1)), x_shape[1]
    if group < 1 or c_in % group or w_shape[0] != c_in:
        return f"group={group} does not divide C_in={c_in} (weight {tuple(w_shape)})"
    if len(attr_ints(node, "output_shape", ())) not in (0, 2):
        return "output_shape must give the 2 spatial sizes"
    kernel_shape = attr_ints(node, "kernel_shape", tuple(w_shape[2:]))
    if tuple(kernel_shape) != tuple(w_shape[2:]):
        return f"kernel_shape {kernel_shape} differs from the weight's {tuple(w_shape[2:])}"
    geo = geometry(node, x_shape, w_shape)
    if min(geo.pads) < 0:
        return f"output_shape/auto_pad imply negative padding {geo.pads}; give explicit pads and output_padding"
    if min(geo.out_hw) < 1:
        return f"the output would be empty (size {geo.out_hw})"
    if w_shape[0] // group * w_shape[2] * w_shape[3] > MAX_ACCUMULATION_DEPTH:
        return "accumulation depth C_in * KH * KW exceeds the int32 accumulator"
    y_shape = g.tensors[node.outputs[0]].shape if node.outputs[0] in g.tensors else None
    if y_shape is not None and len(y_shape) == 4 and tuple(y_shape[2:]) != geo.out_hw:
        return f"shape inference gives output {tuple(y_shape)}, the attributes imply spatial size {geo.out_hw}"
    return None


def lower_conv_transpose(node: Node, g: Graph) -> list[KernelCall]:
    x, w, y = g.tensors[node.inputs[0]], g.tensors[node.inputs[1]], g.tensors[node.outputs[0]]
    geo = geometry(node, x.shape, w.shape)
    if geo.out_hw != tuple(y.shape[2:]):
        raise CompileError(f"node '{node.name}' (ConvTranspose): output size {geo.out_hw} disagrees with {y.shape}")
    mult, shift = quant.quantize_multipliers(
        np.float64(x.quant.s) * output_scales(node, w.quant.scale).astype(np.float64) / np.float64(y.quant.s)
    )
    act_min, act_max = quant.activation_range(node.attr("activation"), y.quant)
    group = int(node.attr("group", 1))
    c_in, c_out_group, kh, kw = w.data.shape
    # [C_IN, C_OUT / G, KH, KW] -> [C_OUT, KH, KW, C_IN / G]: output channel oc reads group oc // (C_OUT / G)
    weights = w.data.reshape(group, c_in // group, c_out_group, kh, kw).transpose(0, 2, 3, 4, 1)
    weights = np.ascontiguousarray(weights.reshape(group * c_out_group, kh, kw, c_in // group))
    params = dict(
        input_offset=-x.quant.zp,
        output_offset=y.quant.zp,
        stride=geo.strides,
        padding=(geo.pads[0], geo.pads[1]),
        dilation=geo.dilations,
        act_min=act_min,
        act_max=act_max,
        in_dims=kernel_dims(x.shape),
        filter_dims=tuple(int(d) for d in weights.shape),
        out_dims=kernel_dims(y.shape),
        output_stride=0,  # dense; lower.py widens it when the output is a slice of a concatenation
    )
    return [
        KernelCall(
            kernel="mcu_conv_transpose_s8",
            template="kernels/conv_transpose_s8.c.j2",
            node=node.name,
            params=params,
            arrays=dict(weights=weights, bias=g.const(node.inputs[2]), multiplier=mult, shift=shift),
            inputs=(node.inputs[0],),
            outputs=node.outputs,
        )
    ]


def _call_geometry(call: KernelCall) -> Geometry:
    p = call.params
    _, kh, kw, _ = p["filter_dims"]
    _, oh, ow, _ = p["out_dims"]
    pads = (p["padding"][0], p["padding"][1], 0, 0)  # the bottom/right crop follows from the output size
    return Geometry((kh, kw), tuple(p["stride"]), tuple(p["dilation"]), pads, (oh, ow))


@register_kernel("mcu_conv_transpose_s8")
def conv_transpose_s8_reference(call: KernelCall, inputs: list[np.ndarray]) -> np.ndarray:
    """Scattered int64 sums: integer addition in any order equals the C kernel's gathered int32 sums."""
    p = call.params
    n, h, w, c = p["in_dims"]
    xs = to_logical(inputs[0], (n, c, h, w)).astype(np.int64) + p["input_offset"]
    groups = c // p["filter_dims"][3]
    weights = call.arrays["weights"].astype(np.int64)  # [C_OUT, KH, KW, C_IN / G]
    c_out, kh, kw, c_in_group = weights.shape
    weights = weights.reshape(groups, c_out // groups, kh, kw, c_in_group).transpose(0, 4, 1, 2, 3)
    weights = block_diagonal(weights.reshape(c, c_out // groups, kh, kw), groups)  # [C_IN, C_OUT, KH, KW]
    acc = _scatter(xs, weights, _call_geometry(call)).transpose(0, 2, 3, 1)  # NHWC
    return _finish(call, acc)


def output_scales(node: Node, scales: np.ndarray) -> np.ndarray:
    """Per output channel: a grouped weight's per-column scales [C_OUT / G] repeat for each group."""
    return np.tile(scales, int(node.attr("group", 1)))


def conv_transpose_macs(params: dict) -> int:
    """Multiply-accumulates of mcu_conv_transpose_s8: the (input pixel, tap) pairs that land in the output."""
    n, h, w, _ = params["in_dims"]
    c_out, kh, kw, c_in = params["filter_dims"]  # c_in: the input channels of one group
    _, oh, ow, _ = params["out_dims"]
    pairs = 1
    for i, (size, k, out) in enumerate(((h, kh, oh), (w, kw, ow))):
        pos = np.arange(size)[:, None] * params["stride"][i] + np.arange(k)[None, :] * params["dilation"][i]
        pos = pos - params["padding"][i]
        pairs *= int(np.count_nonzero((pos >= 0) & (pos < out)))
    return int(n) * pairs * int(c_in) * int(c_out)


register(
    OpDef(
        "ConvTranspose",
        reference=conv_transpose_reference,
        weight_axis={1: 1},  # ONNX weight [C_IN, C_OUT, KH, KW]: output channels on axis 1
        bias_input=2,
        output_scales=output_scales,
        lower=lower_conv_transpose,
        fusable_activation=True,
        check=accepts_1d(check_conv_transpose),
    )
)
