"""Pad -> mcu_pad_s8: constant, reflect, edge and wrap (circular) padding (and cropping, for negative pads) of a
rank <= 4 tensor, done in its physical layout (NHWC for rank 4, so H, W and C pads all work).

Quantization: the output is calibrated like any tensor. With min/max calibration its range is exactly the
input's range extended by the pad value, so it equals the input's quantization (a plain copy) whenever the
value lies inside that range (always for reflect/edge/wrap, and for value 0, since every range holds 0);
otherwise the copied values are requantized to the wider grid with TFLite's fixed-point rescaling. The pad value is
quantized on the output grid (halves away from zero, saturated).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import quant
from ..ir import CompileError, Graph, KernelCall, Node, Shape
from ..layout import physical_shape, storage_perm
from .registry import OpDef, attr_ints, register, register_kernel

MODES = {"constant": 0, "reflect": 1, "edge": 2, "wrap": 3}  # = mcu_pad_mode in mcu_nn_types.h


@dataclass(frozen=True)
class PadSpec:
    mode: str
    before: tuple[int, ...]  # per ONNX axis; negative crops
    after: tuple[int, ...]
    value: float


def _text(v, default: str) -> str:
    if v is None:
        return default
    return v.decode() if isinstance(v, bytes) else str(v)


def pad_spec(node: Node, rank: int, pads, value, axes) -> PadSpec:
    """The pads of either form: opset 2 attributes, or (opset 11+) the pads/constant_value/axes inputs."""
    mode = _text(node.attr("mode"), "constant")
    if pads is None:  # opset < 11
        pads = attr_ints(node, "pads", (0,) * 2 * rank)
        value = node.attr("value", 0.0)
    pads = [int(p) for p in np.asarray(pads).ravel()]
    axes = list(range(rank)) if axes is None else [int(a) % rank for a in np.asarray(axes).ravel()]
    if len(pads) != 2 * len(axes):
        raise CompileError(f"node '{node.name}' (Pad): {len(pads)} pads for {len(axes)} axes")
    before, after = [0] * rank, [0] * rank
    for i, a in enumerate(axes):
        before[a], after[a] = pads[i], pads[i + len(axes)]
    v = 0.0 if value is None or np.asarray(value).size == 0 else float(np.asarray(value).ravel()[0])
    return PadSpec(mode, tuple(before), tuple(after), v)


def _inputs(node: Node, g: Graph) -> list:
    """pads, constant_value, axes as constants (None where absent); CompileError if one is computed."""
    out = []
    for i in (1, 2, 3):
        name = node.inputs[i] if len(node.inputs) > i else ""
        if name and g.const(name) is None:
            raise CompileError(f"node '{node.name}' (Pad): input '{name}' must be a constant")
        out.append(g.const(name) if name else None)
    return out


def graph_pad_spec(node: Node, g: Graph) -> PadSpec:
    return pad_spec(node, len(g.tensors[node.inputs[0]].shape), *_inputs(node, g))


def source_index(n: int, before: int, out_len: int, mode: int) -> np.ndarray:
    """Per output position along one axis: the input position it copies, or -1 for the constant."""
    src = np.arange(out_len, dtype=np.int64) - before
    if mode == MODES["edge"]:
        return np.clip(src, 0, n - 1)
    if mode == MODES["wrap"]:  # as onnxruntime: negative pads crop first, positive ones wrap around what is kept
        start = max(-before, 0)
        kept = n - start - max(-(out_len - n - before), 0)
        return start + np.mod(np.arange(out_len, dtype=np.int64) - max(before, 0), kept)
    if mode == MODES["reflect"]:
        if n == 1:
            return np.zeros_like(src)
        period = 2 * (n - 1)
        src = np.mod(src, period)
        return np.where(src >= n, period - src, src)
    return np.where((src >= 0) & (src < n), src, -1)


def gather_padded(x: np.ndarray, maps: list[np.ndarray], fill) -> np.ndarray:
    y = x
    for axis, m in enumerate(maps):
        y = np.take(y, np.maximum(m, 0), axis=axis)
        if np.any(m < 0):
            view = np.moveaxis(y, axis, 0)
            view[m < 0] = fill
    return np.ascontiguousarray(y)


def pad_reference(node: Node, x: np.ndarray, pads=None, value=None, axes=None) -> list[np.ndarray]:
    spec = pad_spec(node, x.ndim, pads, value, axes)
    mode = MODES[spec.mode]
    maps = [source_index(n, b, n + b + a, mode) for n, b, a in zip(x.shape, spec.before, spec.after)]
    return [gather_padded(x.astype(np.float32), maps, np.float32(spec.value))]


def lower_pad(node: Node, g: Graph) -> list[KernelCall]:
    x, y = g.tensors[node.inputs[0]], g.tensors[node.outputs[0]]
    spec = graph_pad_spec(node, g)
    perm = storage_perm(x.shape)
    lead = 4 - len(x.shape)
    same = bool(np.array_equal(x.quant.scale, y.quant.scale) and x.quant.zp == y.quant.zp)
    mult, shift = quant.quantize_multiplier(float(np.float64(x.quant.s) / np.float64(y.quant.s)))
    params = dict(
        in_dims=(1,) * lead + physical_shape(x.shape),
        out_dims=(1,) * lead + physical_shape(y.shape),
        before=(0,) * lead + tuple(spec.before[a] for a in perm),
        mode=MODES[spec.mode],
        pad_value=int(quant.quantize(np.float32(spec.value), y.quant)),
        copy=int(same),
        input_offset=-x.quant.zp,
        output_offset=y.quant.zp,
        multiplier=mult,
        shift=shift,
    )
    return [KernelCall("mcu_pad_s8", "kernels/pad_s8.c.j2", node.name, params, {}, node.inputs[:1], node.outputs)]


@register_kernel("mcu_pad_s8")
def pad_s8_reference(call: KernelCall, inputs: list[np.ndarray]) -> np.ndarray:
    p = call.params
    x = inputs[0].reshape(p["in_dims"])
    if not p["copy"]:
        offset_x = x.astype(np.int64) + p["input_offset"]
        x = quant.requantize_to_int8(offset_x, p["multiplier"], p["shift"], p["output_offset"], -128, 127)
    maps = [source_index(n, b, o, p["mode"]) for n, b, o in zip(p["in_dims"], p["before"], p["out_dims"])]
    return gather_padded(x.astype(np.int8), maps, np.int8(p["pad_value"]))


def check_pad(node: Node, g: Graph) -> str | None:
    shape: Shape = g.tensors[node.inputs[0]].shape
    if len(shape) > 4:
        return f"tensors of rank {len(shape)} > 4 are not supported"
    try:
        spec = graph_pad_spec(node, g)
    except CompileError as exc:
        return str(exc).split(": ", 1)[-1]
    if spec.mode not in MODES:
        return f"mode '{spec.mode}' is not supported (constant, reflect, edge, wrap are)"
    for axis, (n, b, a) in enumerate(zip(shape, spec.before, spec.after)):
        if n + b + a <= 0:
            return f"axis {axis} would be empty (size {n}, pads {b}, {a})"
        if spec.mode == "wrap" and n + min(b, 0) + min(a, 0) < 1:
            return f"wrap pads crop axis {axis} away entirely (size {n}, pads {b}, {a})"
        if spec.mode == "reflect" and (b > 0 or a > 0) and max(b, a) > n - 1:
            return f"reflect pads must be smaller than the axis (axis {axis}: size {n}, pads {b}, {a})"
    return None


register(OpDef("Pad", reference=pad_reference, lower=lower_pad, check=check_pad))
