"""Conv -> mcu_conv_s8_fast / mcu_conv_s8 (group == 1), mcu_conv_s8 (grouped: 1 < group < C_in) or
mcu_depthwise_conv_s8 (group == C_in)."""

from __future__ import annotations

import numpy as np

from .. import quant
from ..ir import CompileError, Graph, KernelCall, Node
from ..layout import kernel_dims, to_logical
from .lift import accepts_1d
from .registry import OpDef, register, register_kernel
from .window import Window, gather_windows, overlap_gap, window_of

# |w * (x + input_offset)| <= 127 * 255, so an int32 accumulator holds this many taps without overflow.
MAX_ACCUMULATION_DEPTH = (2**31 - 1) // (127 * 255) - 1


def conv_window(node: Node, x_shape, w_shape, y_shape) -> Window:
    return window_of(node, x_shape, y_shape, (int(w_shape[2]), int(w_shape[3])))


def conv_reference(node: Node, x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None) -> list[np.ndarray]:
    group = int(node.attr("group", 1))
    n, c = x.shape[:2]
    o, cg, kh, kw = w.shape
    win = conv_window(node, x.shape, w.shape, _conv_out_shape(node, x.shape, w.shape))
    cols = gather_windows(x.astype(np.float32), win, 0.0)  # (N, C, KH, KW, OH, OW)
    oh, ow = win.out_hw
    cols = cols.reshape(n, group, cg * kh * kw, oh * ow)
    wg = w.astype(np.float32).reshape(group, o // group, cg * kh * kw)
    y = np.einsum("gok,ngkp->ngop", wg, cols, optimize=True).reshape(n, o, oh, ow)
    if b is not None:
        y = y + b.astype(np.float32).reshape(1, -1, 1, 1)
    return [y.astype(np.float32)]


def _conv_out_shape(node: Node, x_shape, w_shape) -> tuple[int, ...]:
    """Output shape of a Conv (only needed where the graph has no inferred shape, e.g. reference runs in tests)."""
    kh, kw = int(w_shape[2]), int(w_shape[3])
    strides = node.attr("strides", (1, 1))
    dil = node.attr("dilations", (1, 1))
    auto_pad = node.attr("auto_pad", "NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
    out = []
    for i, k in enumerate((kh, kw)):
        size = int(x_shape[2 + i])
        if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            out.append(-(-size // strides[i]))
        else:
            pads = node.attr("pads", (0, 0, 0, 0)) if auto_pad == "NOTSET" else (0, 0, 0, 0)
            out.append((size + pads[i] + pads[i + 2] - dil[i] * (k - 1) - 1) // strides[i] + 1)
    return (int(x_shape[0]), int(w_shape[0]), *out)


def lower_conv(node: Node, g: Graph) -> list[KernelCall]:
    x, w, y = g.tensors[node.inputs[0]], g.tensors[node.inputs[1]], g.tensors[node.outputs[0]]
    bias = g.const(node.inputs[2])
    group = int(node.attr("group", 1))
    c_in = x.shape[1]
    win = conv_window(node, x.shape, w.shape, y.shape)
    depthwise = group > 1 and group == c_in
    grouped = 1 < group < c_in
    if not depthwise and w.shape[1] * win.kernel[0] * win.kernel[1] > MAX_ACCUMULATION_DEPTH:
        raise CompileError(f"node '{node.name}' (Conv): accumulation depth exceeds the int32 accumulator")
    mult, shift = quant.quantize_multipliers(
        np.float64(x.quant.s) * w.quant.scale.astype(np.float64) / np.float64(y.quant.s)
    )
    act_min, act_max = quant.activation_range(node.attr("activation"), y.quant)
    weights = w.data.transpose(1, 2, 3, 0) if depthwise else w.data.transpose(0, 2, 3, 1)  # [1,KH,KW,O] / OHWI
    params = dict(
        input_offset=-x.quant.zp,
        output_offset=y.quant.zp,
        stride=win.strides,
        padding=(win.pads[0], win.pads[1]),
        dilation=win.dilations,
        act_min=act_min,
        act_max=act_max,
        in_dims=kernel_dims(x.shape),
        filter_dims=tuple(int(d) for d in weights.shape),
        out_dims=kernel_dims(y.shape),
        output_stride=0,  # dense; lower.py widens it when the output is a slice of a concatenation
    )
    kernel = "mcu_depthwise_conv_s8" if depthwise else "mcu_conv_s8"
    scratch = 0 if depthwise else 2 * int(np.prod(weights.shape[1:]))  # one im2col column of int16
    steps = (1,)  # output pixels whose windows are all read before any of their outputs is written
    weights = np.ascontiguousarray(weights)
    # The fast kernels requantize with mcu_requantize_fast: right shifts only (a left shift, a multiplier above 1,
    # leaves the layer to the generic kernel).
    right_shifts = shift.max(initial=0) <= 0
    folded = _folded_bias(weights, bias, params) if right_shifts and group == 1 else None
    per_channel = depthwise  # depthwise: channel by channel; conv: im2col of the pixel(s) first
    if folded is not None:
        # The int8 GEMM kernel: input offset folded into the bias, weights packed in the order it reads them.
        kernel, bias, weights = "mcu_conv_s8_fast", folded, pack_conv_fast(weights)
        scratch = conv_fast_scratch(params["filter_dims"])
        steps = FAST_PIXELS_PER_STEP
    dw3x3 = _depthwise_3x3_bias(weights, bias, params, win) if right_shifts and depthwise else None
    if dw3x3 is not None:
        # 3x3, multiplier 1: 4 channels per step, input offset folded into the bias, weights packed per block.
        kernel, bias, weights = "mcu_depthwise_conv_3x3_s8_fast", dw3x3, pack_depthwise_3x3(weights)
        # Per pixel it writes a group (4 channels, then the last C % 4 one by one) after reading the group's
        # windows: the channel-by-channel gap, except with a single group (C == 4: the whole pixel read first).
        per_channel = int(y.shape[1]) != 4
    return [
        KernelCall(
            kernel=kernel,
            template="kernels/conv_s8.c.j2",
            node=node.name,
            params=params,
            arrays=dict(weights=weights, bias=bias, multiplier=mult, shift=shift),
            inputs=(node.inputs[0],),
            outputs=node.outputs,
            scratch_bytes=scratch,
            # A grouped conv writes a group's outputs of a pixel before it reads the next group's taps: no overlap.
            overlap_gap=None if grouped else max(
                overlap_gap(
                    params["in_dims"], params["out_dims"], win.kernel, win.strides, win.pads, win.dilations,
                    per_channel=per_channel, pixels_per_step=k,
                )
                for k in steps  # the same C compiles to either step: the gap must suit both
            ),
        )
    ]


def _folded_bias(weights: np.ndarray, bias: np.ndarray | None, params: dict) -> np.ndarray | None:
    """bias + input_offset * sum(w) per output channel (int32) when mcu_conv_s8_fast can take the conv: the folded
    bias plus any partial sum of raw int8 products (|w * x| <= 127 * 128 per tap) stays within (-2^29, 2^29), the
    range of mcu_requantize_fast; else None."""
    rows = weights.reshape(weights.shape[0], -1)
    return quant.fold_input_offset(rows, bias, params["input_offset"], margin=rows.shape[1] * 127 * 128, limit=2**29)


# mcu_conv_s8_fast takes output pixels 3 at a time where MCU_DSP, 2 in portable C (MCU_CONV_FAST_PIXELS).
FAST_PIXELS_PER_STEP = (2, 3)


def conv_fast_scratch(filter_dims) -> int:
    """mcu_conv_s8_fast_get_buffer_size: three pixels' windows of int16 (the depth padded to chunks of 4), then the
    int32 accumulators of 3 pixels x a block of up to 8 channel pairs."""
    o, kh, kw, c = (int(d) for d in filter_dims)
    return 3 * 2 * (-(-kh * kw * c // 4) * 4) + 3 * 2 * 4 * min((o + 1) // 2, 8)


def pack_conv_fast(weights: np.ndarray) -> np.ndarray:
    """OHWI weights (or any [O, ...] array) -> the order mcu_conv_s8_fast reads them (mcu_nn.h): per pair of
    output channels its depths in chunks of 4, the last one padded with zero weights, the two channels interleaved,
    each chunk in the order depths 0, 2, 1, 3 (SXTB16's split of a word); then the last channel of an odd count, its
    chunks in depth order. Every chunk is 4-byte aligned for word loads."""
    o = weights.shape[0]
    w = weights.reshape(o, -1)
    w = np.pad(w, ((0, 0), (0, -w.shape[1] % 4)))
    even = o // 2 * 2
    order = np.arange(w.shape[1]).reshape(-1, 4)[:, [0, 2, 1, 3]].ravel()
    pairs = w[:even][:, order].reshape(even // 2, 2, w.shape[1]).transpose(0, 2, 1)  # per pair and position: both
    return np.ascontiguousarray(np.concatenate([pairs.ravel(), w[even:].ravel()]))


def unpack_conv_fast(packed: np.ndarray, filter_dims) -> np.ndarray:
    """The inverse of pack_conv_fast: the OHWI weights of shape filter_dims (the padding dropped)."""
    o, depth = int(filter_dims[0]), int(np.prod(filter_dims[1:]))
    padded = depth + -depth % 4
    where = pack_conv_fast(np.arange(o * padded).reshape(o, padded))  # packed[i] = padded_w.flat[where[i]]
    w = np.empty(o * padded, packed.dtype)
    w[where] = packed
    return w.reshape(o, padded)[:, :depth].reshape(tuple(int(d) for d in filter_dims))


# Folded biases stay this far inside +-2^29, so that with 9 taps of |w * x| <= 127 * 128 (< 2^18) the accumulator
# is within mcu_requantize_fast's range.
_DW3X3_MARGIN = 2**18


def _depthwise_3x3_bias(
    weights: np.ndarray, bias: np.ndarray | None, params: dict, win: Window
) -> np.ndarray | None:
    """bias + input_offset * (sum of the 9 weights) per channel (int32) when the depthwise conv suits
    mcu_depthwise_conv_3x3_s8_fast (3x3, multiplier 1, stride 1 or 2, dilation 1, any padding, the sum within
    +-(2^29 - 2^18): mcu_requantize_fast's range with room for the taps), else None. lower_conv also requires
    right shifts (multipliers below 1)."""
    _, kh, kw, c_out = weights.shape
    if (kh, kw) != (3, 3) or c_out != params["in_dims"][3] or tuple(win.dilations) != (1, 1):
        return None
    if any(s not in (1, 2) for s in win.strides):
        return None
    rows = weights.reshape(9, c_out).T  # the 9 taps of each channel
    return quant.fold_input_offset(rows, bias, params["input_offset"], margin=_DW3X3_MARGIN, limit=2**29)


# A block of 4 channels in the order the DSP path reads it (tap = 3 * ky + kx): the taps of rows 0 and 1 of each
# column in pairs, each pair as two words (channels 0, 1 of both taps; then 2, 3), then tap 8, then taps 6 and 7
# as a pair.
_DW3X3_PAIR = [((a, h), (a, h + 1), (b, h), (b, h + 1)) for a, b in ((0, 3), (1, 4), (2, 5), (6, 7)) for h in (0, 2)]
_DW3X3_ORDER = np.array([tk for pair in _DW3X3_PAIR[:6] + [((8, 0), (8, 1), (8, 2), (8, 3))] + _DW3X3_PAIR[6:]
                         for tk in pair])


def pack_depthwise_3x3(weights: np.ndarray) -> np.ndarray:
    """[1, 3, 3, C] -> the order mcu_depthwise_conv_3x3_s8_fast reads: per block of 4 channels its 36 bytes in
    _DW3X3_ORDER, then the last C % 4 channels one by one [9 taps]."""
    w = weights.reshape(9, -1)
    c = w.shape[1]
    full = c - c % 4
    blocks = w[:, :full].reshape(9, full // 4, 4)[_DW3X3_ORDER[:, 0], :, _DW3X3_ORDER[:, 1]].T.ravel()
    return np.ascontiguousarray(np.concatenate([blocks, w[:, full:].T.ravel()]))


def unpack_depthwise_3x3(packed: np.ndarray, c: int) -> np.ndarray:
    """The inverse of pack_depthwise_3x3: [3, 3, C]."""
    where = pack_depthwise_3x3(np.arange(9 * c).reshape(1, 3, 3, c).astype(np.int64))  # packed[i] = w.flat[where[i]]
    w = np.empty_like(packed)
    w[where] = packed
    return w.reshape(3, 3, c)


def _window_of_call(call: KernelCall, kh: int, kw: int) -> Window:
    p = call.params
    _, oh, ow, _ = p["out_dims"]
    pads = (p["padding"][0], p["padding"][1], 0, 0)
    return Window((kh, kw), tuple(p["stride"]), tuple(p["dilation"]), pads, (oh, ow))


def _offset_windows(call: KernelCall, x: np.ndarray, kh: int, kw: int) -> np.ndarray:
    """int64 (N, C, KH, KW, OH, OW) of x + input_offset, 0 at taps outside the image (skipped in C)."""
    n, h, w, c = call.params["in_dims"]
    xs = to_logical(x, (n, c, h, w)).astype(np.int64) + call.params["input_offset"]
    return gather_windows(xs, _window_of_call(call, kh, kw), 0)


def _finish(call: KernelCall, acc: np.ndarray) -> np.ndarray:
    p, a = call.params, call.arrays
    acc = acc + a["bias"].astype(np.int64)
    return quant.requantize_to_int8(
        acc, a["multiplier"], a["shift"], p["output_offset"], p["act_min"], p["act_max"]
    ).reshape(p["out_dims"])


@register_kernel("mcu_conv_s8")
def conv_s8_reference(call: KernelCall, inputs: list[np.ndarray]) -> np.ndarray:
    w = call.arrays["weights"].astype(np.int64)  # OHWI, I = the channels of one group
    o, kh, kw, c = w.shape
    cols = _offset_windows(call, inputs[0], kh, kw)  # (N, C_IN, KH, KW, OH, OW)
    n, c_in, _, _, oh, ow = cols.shape
    groups = c_in // c
    cols = cols.reshape(n, groups, c, kh, kw, oh * ow).transpose(1, 0, 5, 3, 4, 2).reshape(groups, -1, kh * kw * c)
    w = w.reshape(groups, o // groups, kh * kw * c)
    acc = np.einsum("gpk,gok->pgo", cols, w).reshape(n * oh * ow, o)  # output channel oc: group oc // (o // groups)
    return _finish(call, acc)


@register_kernel("mcu_conv_s8_fast")
def conv_s8_fast_reference(call: KernelCall, inputs: list[np.ndarray]) -> np.ndarray:
    """The raw int8 input (taps outside the image read the zero point -input_offset) times the unpacked weights,
    plus the bias with the input offset folded in (lower_conv)."""
    w = unpack_conv_fast(call.arrays["weights"], call.params["filter_dims"]).astype(np.int64)  # OHWI
    o, kh, kw, c = w.shape
    n, h, wd, _ = call.params["in_dims"]
    xs = to_logical(inputs[0], (n, c, h, wd)).astype(np.int64)
    cols = gather_windows(xs, _window_of_call(call, kh, kw), -call.params["input_offset"])  # (N, C, KH, KW, OH, OW)
    _, _, _, _, oh, ow = cols.shape
    cols = cols.transpose(0, 4, 5, 2, 3, 1).reshape(n * oh * ow, kh * kw * c)
    return _finish(call, cols @ w.reshape(o, -1).T)


@register_kernel("mcu_depthwise_conv_s8")
def depthwise_conv_s8_reference(call: KernelCall, inputs: list[np.ndarray]) -> np.ndarray:
    w = call.arrays["weights"].astype(np.int64)  # [1, KH, KW, C_OUT]
    _, kh, kw, c_out = w.shape
    cols = _offset_windows(call, inputs[0], kh, kw)
    mult = c_out // cols.shape[1]
    cols = cols[:, np.arange(c_out) // mult]  # output channel oc reads input channel oc / multiplier
    acc = np.einsum("noyxhw,yxo->nhwo", cols, w[0])
    return _finish(call, acc)


@register_kernel("mcu_depthwise_conv_3x3_s8_fast")
def depthwise_conv_3x3_s8_fast_reference(call: KernelCall, inputs: list[np.ndarray]) -> np.ndarray:
    """The raw int8 input (taps outside the image read the zero point -input_offset) times the unpacked weights,
    plus the bias with the input offset folded in (lower_conv)."""
    n, h, wd, c = call.params["in_dims"]
    w = unpack_depthwise_3x3(call.arrays["weights"], c).astype(np.int64)
    xs = to_logical(inputs[0], (n, c, h, wd)).astype(np.int64)
    cols = gather_windows(xs, _window_of_call(call, 3, 3), -call.params["input_offset"])
    return _finish(call, np.einsum("noyxhw,yxo->nhwo", cols, w))


def check_conv(node: Node, g: Graph) -> str | None:
    x_shape, w_shape = g.tensors[node.inputs[0]].shape, g.tensors[node.inputs[1]].shape
    if len(x_shape) != 4 or len(w_shape) != 4:
        return f"only 2-D convolution (rank-4 NCHW input) is supported, got input shape {x_shape}"
    group, c_in, c_out = int(node.attr("group", 1)), x_shape[1], w_shape[0]
    if group < 1 or c_in % group or c_out % group or w_shape[1] * group != c_in:
        return f"group={group} does not divide C_in={c_in} and C_out={c_out} into the weight's {w_shape[1]} inputs"
    return None


register(
    OpDef(
        "Conv",
        reference=conv_reference,
        weight_axis={1: 0},
        bias_input=2,
        lower=lower_conv,
        fusable_activation=True,
        check=accepts_1d(check_conv),
    )
)
