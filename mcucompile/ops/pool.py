"""MaxPool, AveragePool -> mcu_{max,avg}_pool_s8 (GlobalAveragePool and reductions: reduce.py).

Max and average pooling keep the input's quantization (as TFLite requires), so they need no rescaling.
"""

from __future__ import annotations

import numpy as np

from .. import quant
from ..ir import CompileError, Graph, KernelCall, Node
from ..layout import kernel_dims, to_logical
from .reduce import rounded_division
from .lift import accepts_1d
from .registry import OpDef, attr_ints, register, register_kernel
from .window import Window, gather_windows, overlap_gap, tap_inside, window_of


def _pool_out_shape(node: Node, x_shape) -> tuple[int, ...]:
    kernel = attr_ints(node, "kernel_shape", ())
    strides = attr_ints(node, "strides", (1,) * len(kernel))
    dil = attr_ints(node, "dilations", (1,) * len(kernel))
    pads = attr_ints(node, "pads", (0,) * 2 * len(kernel))
    auto_pad = node.attr("auto_pad", "NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
    out = []
    for i, k in enumerate(kernel):
        size = int(x_shape[2 + i])
        if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            out.append(-(-size // strides[i]))
            continue
        if auto_pad == "VALID":
            out.append((size - dil[i] * (k - 1) - 1) // strides[i] + 1)
            continue
        span = size + pads[i] + pads[i + len(kernel)] - dil[i] * (k - 1) - 1
        if node.attr("ceil_mode", 0):
            o = -(-span // strides[i]) + 1
            if (o - 1) * strides[i] >= size + pads[i]:  # the last window may not start inside the end padding
                o -= 1
        else:
            o = span // strides[i] + 1
        out.append(o)
    return (int(x_shape[0]), int(x_shape[1]), *out)


def pool_window(node: Node, x_shape, y_shape) -> Window:
    kernel = attr_ints(node, "kernel_shape", ())
    if len(kernel) != 2:
        raise CompileError(f"node '{node.name}' ({node.op}): only 2-D pooling is supported")
    return window_of(node, x_shape, y_shape, (kernel[0], kernel[1]))


def max_pool_reference(node: Node, x: np.ndarray) -> list[np.ndarray]:
    win = pool_window(node, x.shape, _pool_out_shape(node, x.shape))
    return [gather_windows(x.astype(np.float32), win, -np.inf).max(axis=(2, 3))]


def _avg_counts(node: Node, in_hw: tuple[int, int], win: Window) -> np.ndarray:
    """(OH, OW) divisor of each window: in-image taps, plus the explicit pads when count_include_pad=1."""
    if node.attr("count_include_pad", 0):
        lo, hi = (-win.pads[0], -win.pads[1]), (in_hw[0] + win.pads[2], in_hw[1] + win.pads[3])
    else:
        lo, hi = (0, 0), in_hw
    return tap_inside(in_hw, win, lo, hi).sum(axis=(0, 1))


def avg_pool_reference(node: Node, x: np.ndarray) -> list[np.ndarray]:
    win = pool_window(node, x.shape, _pool_out_shape(node, x.shape))
    total = gather_windows(x.astype(np.float32), win, 0.0).sum(axis=(2, 3))
    return [(total / _avg_counts(node, x.shape[2:], win)).astype(np.float32)]


def _pool_params(node: Node, g: Graph) -> dict:
    x, y = g.tensors[node.inputs[0]], g.tensors[node.outputs[0]]
    win = pool_window(node, x.shape, y.shape)
    return dict(
        kernel=win.kernel,
        stride=win.strides,
        dilation=win.dilations,
        padding=(win.pads[0], win.pads[1]),
        in_dims=kernel_dims(x.shape),
        out_dims=kernel_dims(y.shape),
        output_stride=0,  # dense; lower.py widens it when the output is a slice of a concatenation
    )


def _pool_call(kernel: str, node: Node, params: dict) -> KernelCall:
    # Both pooling kernels write each output channel right after reading its window of the same input channel.
    gap = overlap_gap(
        params["in_dims"], params["out_dims"], params["kernel"], params["stride"], params["padding"],
        params["dilation"], per_channel=True,
    )
    return KernelCall(kernel, "kernels/pool_s8.c.j2", node.name, params, {}, node.inputs[:1], node.outputs,
                      overlap_gap=gap)


def lower_max_pool(node: Node, g: Graph) -> list[KernelCall]:
    params = dict(
        _pool_params(node, g),
        pad_end=(0, 0),
        count_include_pad=0,
        pad_value=0,
        act_min=quant.INT8_MIN,
        act_max=quant.INT8_MAX,
    )
    return [_pool_call("mcu_max_pool_s8", node, params)]


def lower_avg_pool(node: Node, g: Graph) -> list[KernelCall]:
    x = g.tensors[node.inputs[0]]
    params = _pool_params(node, g)
    win = pool_window(node, x.shape, g.tensors[node.outputs[0]].shape)
    include_pad = int(node.attr("count_include_pad", 0))
    # Taps inside the explicit pads (counted only with count_include_pad) hold real 0 = the zero point.
    params.update(
        count_include_pad=include_pad,
        pad_end=(win.pads[2], win.pads[3]),
        pad_value=x.quant.zp,
        act_min=quant.INT8_MIN,
        act_max=quant.INT8_MAX,
    )
    return [_pool_call("mcu_avg_pool_s8", node, params)]


def _call_window(call: KernelCall) -> Window:
    p = call.params
    pad_end = p.get("pad_end", (0, 0))
    return Window(
        tuple(p["kernel"]),
        tuple(p["stride"]),
        tuple(p["dilation"]),
        (*p["padding"], *pad_end),
        (p["out_dims"][1], p["out_dims"][2]),
    )


def _nchw(call: KernelCall, x: np.ndarray) -> np.ndarray:
    n, h, w, c = call.params["in_dims"]
    return to_logical(x, (n, c, h, w)).astype(np.int64)


def _nhwc(y: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(y.transpose(0, 2, 3, 1))


@register_kernel("mcu_max_pool_s8")
def max_pool_s8_reference(call: KernelCall, inputs: list[np.ndarray]) -> np.ndarray:
    cols = gather_windows(_nchw(call, inputs[0]), _call_window(call), quant.INT8_MIN - 1)
    y = np.clip(cols.max(axis=(2, 3)), call.params["act_min"], call.params["act_max"])
    return _nhwc(y).astype(np.int8)


@register_kernel("mcu_avg_pool_s8")
def avg_pool_s8_reference(call: KernelCall, inputs: list[np.ndarray]) -> np.ndarray:
    p = call.params
    x = _nchw(call, inputs[0])
    win = _call_window(call)
    in_hw = (p["in_dims"][1], p["in_dims"][2])
    inside = tap_inside(in_hw, win, (0, 0), in_hw)
    total = (gather_windows(x, win, 0) * inside).sum(axis=(2, 3))
    if p["count_include_pad"]:
        counted = tap_inside(in_hw, win, (-win.pads[0], -win.pads[1]), (in_hw[0] + win.pads[2], in_hw[1] + win.pads[3]))
        total = total + (counted & ~inside).sum(axis=(0, 1)) * p["pad_value"]
    else:
        counted = inside
    y = rounded_division(total, counted.sum(axis=(0, 1)))
    return _nhwc(np.clip(y, p["act_min"], p["act_max"])).astype(np.int8)


def check_pool(node: Node, g: Graph) -> str | None:
    shape = g.tensors[node.inputs[0]].shape
    if len(shape) != 4 or len(attr_ints(node, "kernel_shape", ())) != 2:
        return f"only 2-D pooling (rank-4 NCHW input) is supported, got input shape {shape}"
    if len(node.outputs) > 1 and node.outputs[1]:
        return "the Indices output is not supported"
    if node.op == "AveragePool" and any(d != 1 for d in attr_ints(node, "dilations", (1, 1))):
        return "dilations are not supported"
    return None


register(OpDef("MaxPool", reference=max_pool_reference, quant="same", lower=lower_max_pool,
               check=accepts_1d(check_pool)))  # fmt: skip
register(OpDef("AveragePool", reference=avg_pool_reference, quant="same", lower=lower_avg_pool,
               check=accepts_1d(check_pool)))  # fmt: skip
