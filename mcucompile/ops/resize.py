"""Resize (opset 10-19) and Upsample (opset 7, 9) of the H and W axes of a rank-4 tensor, nearest or bilinear.

Every output row and column is mapped to its source at compile time, with onnxruntime's float32 coordinate
formulas: nearest stores one source index per output row/column (so the int8 kernel only copies channel runs,
exact by construction); linear stores the two neighbours and the weight of the second in Q11 fixed point
(2048 = 1.0). The int8 bilinear kernel interpolates the raw int8 values with an int32 accumulator of
products of two Q11 weights, then divides by 2^22 rounding halves away from zero (as TFLite's int8
RESIZE_BILINEAR). Output quantization = input's (quant rule "same"), so no rescaling is needed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..ir import CompileError, Graph, KernelCall, Node, Shape
from ..layout import kernel_dims
from .lift import accepts_1d
from .registry import OpDef, register, register_kernel

FRACTION_BITS = 11  # weights in Q11: the product of two is <= 2^22, times |x| <= 128 stays far below 2^31
ONE = 1 << FRACTION_BITS
MAX_DIM = 32767  # tables are int16

TRANSFORMS = (
    "half_pixel",
    "half_pixel_symmetric",
    "pytorch_half_pixel",
    "align_corners",
    "asymmetric",
    "tf_half_pixel_for_nn",
)
NEAREST_MODES = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil", "simple")


@dataclass(frozen=True)
class ResizeSpec:
    mode: str  # "nearest" | "linear" | (refused) "cubic"
    transform: str  # coordinate_transformation_mode
    nearest: str  # nearest_mode; "simple" = Resize-10 / Upsample (truncate, or ceil when shrinking)
    scales: tuple[float, ...]  # float32 scale per axis, as the coordinate formulas use it
    out_shape: Shape


def _text(v, default: str) -> str:
    if v is None:
        return default
    return v.decode() if isinstance(v, bytes) else str(v)


def _per_axis(values, axes, rank: int, fill) -> list:
    values = list(np.asarray(values).ravel())
    if axes is None:
        if len(values) != rank:
            raise CompileError(f"{len(values)} scales/sizes for a rank-{rank} input")
        return values
    out = [fill(a) for a in range(rank)]
    for v, a in zip(values, axes):
        out[int(a) % rank] = v
    return out


def resize_spec(node: Node, in_shape: Shape, args: list) -> ResizeSpec:
    """args: the constant inputs after X (None where absent). Raises CompileError on non-constant operands."""
    rank = len(in_shape)
    mode = _text(node.attr("mode"), "nearest")
    legacy = node.op == "Upsample" or len(node.inputs) == 2  # Upsample, Resize-10: (X, scales)
    if node.op == "Upsample" and not args:
        scales, sizes = node.attr("scales"), None  # opset 7: an attribute
    elif legacy:
        scales, sizes = args[0], None
    else:
        scales = args[1] if len(args) > 1 else None
        sizes = args[2] if len(args) > 2 else None
    axes = node.attr("axes")
    if scales is not None and np.asarray(scales).size > 0:
        sc = [np.float32(s) for s in _per_axis(scales, axes, rank, lambda a: 1.0)]
        out = tuple(int(np.float32(s) * np.float32(d)) for s, d in zip(sc, in_shape))
    elif sizes is not None and np.asarray(sizes).size > 0:
        out = tuple(int(s) for s in _per_axis(sizes, axes, rank, lambda a: in_shape[a]))
        sc = [np.float32(o) / np.float32(d) for o, d in zip(out, in_shape)]
    else:
        raise CompileError(f"node '{node.name}' ({node.op}): constant scales or sizes are needed")
    if legacy:
        transform, nearest = "asymmetric", "simple"
    else:
        transform = _text(node.attr("coordinate_transformation_mode"), "half_pixel")
        nearest = _text(node.attr("nearest_mode"), "round_prefer_floor")
    return ResizeSpec(mode, transform, nearest, tuple(float(s) for s in sc), out)


def _args(node: Node, g: Graph) -> list:
    args = []
    for name in node.inputs[1:]:
        if name and g.const(name) is None:
            raise CompileError(f"node '{node.name}' ({node.op}): input '{name}' must be a constant")
        args.append(g.const(name) if name else None)
    return args


def original_coords(transform: str, out_len: int, in_len: int, scale: float) -> np.ndarray:
    """The input coordinate of each output position, in float32 as onnxruntime computes it."""
    f = np.float32
    x = np.arange(out_len, dtype=np.float32)
    s, lr, lo = f(scale), f(out_len), f(in_len)
    if transform == "asymmetric":
        return x / s
    if transform == "pytorch_half_pixel":
        return (x + f(0.5)) / s - f(0.5) if out_len > 1 else np.zeros_like(x)
    if transform == "tf_half_pixel_for_nn":
        return (x + f(0.5)) / s
    if transform == "align_corners":
        return np.zeros_like(x) if out_len == 1 else x * (lo - f(1)) / (lr - f(1))
    if transform == "half_pixel_symmetric":  # onnxruntime mixes float and double here
        adjustment = f(lr / f(s * lo))
        offset = f(f(lo / f(2)) * f(f(1) - adjustment))
        return (np.float64(offset) + (x.astype(np.float64) + 0.5) / np.float64(s) - 0.5).astype(np.float32)
    return (x + f(0.5)) / s - f(0.5)  # half_pixel


def nearest_index(coords: np.ndarray, nearest: str, in_len: int, scale: float) -> np.ndarray:
    c = coords.astype(np.float64)  # exact: every float32 is a float64
    trunc = np.trunc(c)
    away = np.sign(c) * np.floor(np.abs(c) + 0.5)  # std::round
    if nearest == "simple":
        idx = np.ceil(c) if scale < 1 else trunc
    elif nearest == "round_prefer_ceil":
        idx = away
    elif nearest == "floor":
        idx = np.floor(c)
    elif nearest == "ceil":
        idx = np.ceil(c)
    else:  # round_prefer_floor
        idx = np.where(c == trunc + 0.5, np.floor(c), away)
    return np.clip(idx, 0, in_len - 1).astype(np.int64)


def linear_taps(coords: np.ndarray, in_len: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(i0, i1, fraction of i1) per output position, clamped to the image as onnxruntime does."""
    c = np.clip(coords, np.float32(0), np.float32(in_len - 1)).astype(np.float32)
    i0 = np.minimum(c.astype(np.int64), in_len - 1)
    i1 = np.minimum(i0 + 1, in_len - 1)
    frac = np.where(i0 == i1, np.float32(0), c - i0.astype(np.float32)).astype(np.float32)
    return i0, i1, frac


def _axis_tables(spec: ResizeSpec, in_shape: Shape, axis: int):
    coords = original_coords(spec.transform, spec.out_shape[axis], in_shape[axis], spec.scales[axis])
    if spec.mode == "nearest":
        return nearest_index(coords, spec.nearest, in_shape[axis], spec.scales[axis])
    return linear_taps(coords, in_shape[axis])


def resize_reference(node: Node, x: np.ndarray, *args) -> list[np.ndarray]:
    spec = resize_spec(node, x.shape, list(args))
    x = x.astype(np.float32)
    for axis in (2, 3):
        t = _axis_tables(spec, x.shape, axis)
        if spec.mode == "nearest":
            x = np.take(x, t, axis=axis)
        else:
            i0, i1, frac = t
            shape = [1, 1, 1, 1]
            shape[axis] = -1
            w = frac.reshape(shape).astype(np.float64)
            x = ((1 - w) * np.take(x, i0, axis=axis) + w * np.take(x, i1, axis=axis)).astype(np.float32)
    return [x]


def lower_resize(node: Node, g: Graph) -> list[KernelCall]:
    x, y = g.tensors[node.inputs[0]], g.tensors[node.outputs[0]]
    spec = resize_spec(node, x.shape, _args(node, g))
    if spec.out_shape != tuple(y.shape):
        raise CompileError(f"node '{node.name}' ({node.op}): output shape {y.shape} != computed {spec.out_shape}")
    n, h, w, c = kernel_dims(x.shape)
    _, oh, ow, _ = kernel_dims(y.shape)
    params = dict(batches=n, channels=c, in_size=(h, w), out_size=(oh, ow))
    tables = [_axis_tables(spec, x.shape, axis) for axis in (2, 3)]
    if spec.mode == "nearest":
        kernel, arrays = "mcu_resize_nearest_s8", [t.astype(np.int16) for t in tables]
    else:
        kernel = "mcu_resize_bilinear_s8"
        arrays = []
        for i0, i1, frac in tables:
            weight = np.floor(frac.astype(np.float64) * ONE + 0.5).astype(np.int64)  # frac >= 0: halves up
            arrays.append(np.stack([i0, i1, weight], axis=1).astype(np.int16).ravel())
    return [
        KernelCall(
            kernel,
            "kernels/resize_s8.c.j2",
            node.name,
            params,
            dict(y_table=arrays[0], x_table=arrays[1]),
            node.inputs[:1],
            node.outputs,
        )
    ]


def _nhwc(call: KernelCall, x: np.ndarray) -> np.ndarray:
    p = call.params
    return x.reshape(p["batches"], *p["in_size"], p["channels"])


@register_kernel("mcu_resize_nearest_s8")
def resize_nearest_s8_reference(call: KernelCall, inputs: list[np.ndarray]) -> np.ndarray:
    x = _nhwc(call, inputs[0])
    ys, xs = (call.arrays[k].astype(np.int64) for k in ("y_table", "x_table"))
    return np.ascontiguousarray(x[:, ys][:, :, xs])


@register_kernel("mcu_resize_bilinear_s8")
def resize_bilinear_s8_reference(call: KernelCall, inputs: list[np.ndarray]) -> np.ndarray:
    x = _nhwc(call, inputs[0]).astype(np.int64)
    ty, tx = (call.arrays[k].astype(np.int64).reshape(-1, 3) for k in ("y_table", "x_table"))
    wy1, wx1 = ty[:, 2][None, :, None, None], tx[:, 2][None, None, :, None]
    wy0, wx0 = ONE - wy1, ONE - wx1
    top, bottom = x[:, ty[:, 0]], x[:, ty[:, 1]]
    acc = (
        wy0 * wx0 * top[:, :, tx[:, 0]]
        + wy0 * wx1 * top[:, :, tx[:, 1]]
        + wy1 * wx0 * bottom[:, :, tx[:, 0]]
        + wy1 * wx1 * bottom[:, :, tx[:, 1]]
    )
    half = 1 << (2 * FRACTION_BITS - 1)
    y = np.sign(acc) * ((np.abs(acc) + half) >> (2 * FRACTION_BITS))  # halves away from zero
    return np.clip(y, -128, 127).astype(np.int8)


def check_resize(node: Node, g: Graph) -> str | None:
    shape = g.tensors[node.inputs[0]].shape
    if len(shape) != 4:
        return f"only rank-4 (NCHW) inputs are supported, got shape {shape}"
    mode = _text(node.attr("mode"), "nearest")
    if mode != "nearest" and mode != "linear":
        return f"mode '{mode}' is not supported (nearest and linear are)"
    if int(node.attr("antialias", 0)):
        return "antialias=1 is not supported"
    if int(node.attr("exclude_outside", 0)):
        return "exclude_outside=1 is not supported"
    policy = _text(node.attr("keep_aspect_ratio_policy"), "stretch")
    if policy != "stretch":
        return f"keep_aspect_ratio_policy '{policy}' is not supported (only 'stretch')"
    try:
        spec = resize_spec(node, shape, _args(node, g))
    except CompileError as exc:
        return str(exc).split(": ", 1)[-1]
    if spec.transform not in TRANSFORMS:
        return f"coordinate_transformation_mode '{spec.transform}' is not supported"
    if spec.mode == "nearest" and spec.nearest not in NEAREST_MODES:
        return f"nearest_mode '{spec.nearest}' is not supported"
    if spec.out_shape[:2] != tuple(shape[:2]):
        return f"only H and W may be resized (input {shape}, output {spec.out_shape})"
    if min(spec.out_shape) < 1 or max(*shape, *spec.out_shape) > MAX_DIM:
        return f"output shape {spec.out_shape} is empty or too large"
    return None


for _op in ("Resize", "Upsample"):
    register(OpDef(_op, reference=resize_reference, quant="same", lower=lower_resize, check=accepts_1d(check_resize)))
