"""Sliding-window geometry shared by convolution and pooling: pads from auto_pad, and window gathering."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..ir import CompileError, Node, Shape
from .registry import attr_ints


@dataclass(frozen=True)
class Window:
    kernel: tuple[int, int]
    strides: tuple[int, int]
    dilations: tuple[int, int]
    pads: tuple[int, int, int, int]  # top, left, bottom, right (ONNX order: x1_begin, x2_begin, x1_end, x2_end)
    out_hw: tuple[int, int]


def window_of(node: Node, in_shape: Shape, out_shape: Shape, kernel: tuple[int, int]) -> Window:
    """The 2-D window of a Conv/Pool node on an NCHW input, with auto_pad resolved to explicit pads."""
    if len(in_shape) != 4:
        raise CompileError(
            f"node '{node.name}' ({node.op}): only 2-D spatial inputs (rank 4, NCHW) are supported, "
            f"got shape {in_shape}"
        )
    strides = attr_ints(node, "strides", (1, 1))
    dilations = attr_ints(node, "dilations", (1, 1))
    auto_pad = node.attr("auto_pad", "NOTSET")
    if isinstance(auto_pad, bytes):
        auto_pad = auto_pad.decode()
    out_hw = (int(out_shape[2]), int(out_shape[3]))
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        pads = [0, 0, 0, 0]
        for i in range(2):
            total = max((out_hw[i] - 1) * strides[i] + dilations[i] * (kernel[i] - 1) + 1 - in_shape[2 + i], 0)
            small, big = total // 2, total - total // 2
            pads[i], pads[i + 2] = (small, big) if auto_pad == "SAME_UPPER" else (big, small)
    elif auto_pad == "VALID":
        pads = [0, 0, 0, 0]
    else:
        pads = list(attr_ints(node, "pads", (0, 0, 0, 0)))
    if len(strides) != 2 or len(dilations) != 2 or len(pads) != 4:
        raise CompileError(f"node '{node.name}' ({node.op}): only 2-D windows are supported")
    return Window(tuple(kernel), tuple(strides), tuple(dilations), tuple(pads), out_hw)  # type: ignore[arg-type]


def gather_windows(x: np.ndarray, win: Window, fill: float) -> np.ndarray:
    """NCHW x -> (N, C, KH, KW, OH, OW): the input under every tap of every window; outside the image = fill.

    The bottom/right edge is padded further when ceil_mode windows run past the explicit pads.
    """
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (dh, dw) = win.kernel, win.strides, win.dilations
    pt, pl, pb, pr = win.pads
    oh, ow = win.out_hw
    need_h = (oh - 1) * sh + dh * (kh - 1) + 1
    need_w = (ow - 1) * sw + dw * (kw - 1) + 1
    extra_b = max(need_h - (h + pt + pb), 0)
    extra_r = max(need_w - (w + pl + pr), 0)
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb + extra_b), (pl, pr + extra_r)), constant_values=fill)
    out = np.empty((n, c, kh, kw, oh, ow), dtype=x.dtype)
    for ky in range(kh):
        for kx in range(kw):
            out[:, :, ky, kx] = xp[
                :, :, ky * dh : ky * dh + sh * (oh - 1) + 1 : sh, kx * dw : kx * dw + sw * (ow - 1) + 1 : sw
            ]
    return out


def tap_inside(in_hw: tuple[int, int], win: Window, lo: tuple[int, int], hi: tuple[int, int]) -> np.ndarray:
    """(KH, KW, OH, OW) mask of taps whose input position lies in [lo, hi) per axis (positions in input coordinates)."""
    (kh, kw), (sh, sw), (dh, dw) = win.kernel, win.strides, win.dilations
    oh, ow = win.out_hw
    iy = np.arange(oh)[None, :] * sh - win.pads[0] + np.arange(kh)[:, None] * dh  # (KH, OH)
    ix = np.arange(ow)[None, :] * sw - win.pads[1] + np.arange(kw)[:, None] * dw  # (KW, OW)
    my = (iy >= lo[0]) & (iy < hi[0])
    mx = (ix >= lo[1]) & (ix < hi[1])
    return my[:, None, :, None] & mx[None, :, None, :]


def overlap_gap(
    in_dims, out_dims, kernel, strides, pads, dilations, *, per_channel: bool, pixels_per_step: int = 1
) -> int:
    """The smallest (input offset - output offset) in bytes at which a kernel walking its NHWC output pixel by
    pixel (batch, row, column) may write the output over its own input: no write lands on an input byte that a
    later step still reads. Any larger gap is safe too. `pads` = (top, left); taps outside the image are skipped.

    per_channel=False: a pixel's whole window is read (im2col into scratch) before its channels are written
    (mcu_conv_s8). per_channel=True: output channel oc is written right after its window of input channel
    oc // (C_out // C_in) is read, channel after channel (mcu_depthwise_conv_s8, mcu_{max,avg}_pool_s8; also
    mcu_depthwise_conv_3x3_s8_fast, which writes blocks of 4 channels after reading them, then the last C % 4 one
    by one: the same gap unless C == 4, a single block, where per_channel=False gives its gap).
    pixels_per_step=k (per_channel=False only): the pixels are taken k at a time in (batch, row, column) order
    across rows, the k windows all read before any of the k pixels' channels is written (mcu_conv_s8_fast
    im2cols 3 or 2 windows to scratch first).
    """
    n, h, w, c_in = (int(d) for d in in_dims)
    _, oh, ow, c_out = (int(d) for d in out_dims)

    def first_tap(outs: int, size: int, axis: int) -> tuple[np.ndarray, np.ndarray]:
        taps = np.arange(outs)[:, None] * strides[axis] - pads[axis] + np.arange(kernel[axis])[None, :] * dilations[axis]
        inside = (taps >= 0) & (taps < size)
        return np.where(inside, taps, size).min(axis=1), inside.any(axis=1)

    fy, any_y = first_tap(oh, h, 0)
    fx, any_x = first_tap(ow, w, 1)
    # Per output pixel, the lowest input byte its window reads (channel 0 of its top-left in-image tap).
    low = ((np.arange(n)[:, None, None] * h + fy[None, :, None]) * w + fx[None, None, :]) * c_in
    reads = np.broadcast_to(any_y[:, None] & any_x[None, :], low.shape).ravel()
    never = np.int64(n * h * w * c_in)  # above every input byte: a window with no in-image tap reads nothing
    low = np.where(reads, low.ravel(), never).astype(np.int64)
    pixels = low.size
    suffix = np.append(np.minimum.accumulate(low[::-1])[::-1], never)  # lowest byte read by pixel >= index
    # The last channel of pixel p is written before every read of the pixels of later steps.
    step_end = np.minimum((np.arange(pixels) // pixels_per_step + 1) * pixels_per_step, pixels)
    later = suffix[step_end]
    gaps = np.where(later < never, (np.arange(pixels) + 1) * c_out - later, -never)
    if per_channel and pixels_per_step != 1:
        raise ValueError("pixels_per_step applies to per_channel=False kernels only")
    if per_channel and c_out > 1:
        # Channel oc of pixel p is written before the reads of channels oc+1.. of the same window; the worst is
        # oc = C_out - 2 (the next read is input channel (C_out - 1) // multiplier at the lowest tap).
        within = np.arange(pixels) * c_out + c_out - 1 - (low + (c_out - 1) // (c_out // c_in))
        gaps = np.maximum(gaps, np.where(reads, within, -never))
    return int(max(gaps.max(initial=-never), -never))
