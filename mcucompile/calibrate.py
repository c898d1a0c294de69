"""Calibration: load sample inputs and record the float range of every tensor by running the float graph."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

import numpy as np

from . import validate
from .cformat import printable
from .ir import CompileError, Graph
from .ops import registry
from .quant import quantize_weights_per_channel
from .simulate import run_float

RANDOM_CALIBRATION_SAMPLES = 16


def load_calibration(path: str | os.PathLike, g: Graph) -> dict[str, np.ndarray]:
    """A .npy (samples of the single input) or .npz (one array per input name) -> {input: N x shape}."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CompileError(f"{path}: calibration file not found")
    try:
        loaded = np.load(path, allow_pickle=False)
    except Exception as exc:
        raise CompileError(f"{path}: not a readable .npy/.npz file ({type(exc).__name__})") from None
    if isinstance(loaded, np.ndarray):
        if len(g.inputs) != 1:
            raise CompileError(
                f"{path}: the model has {len(g.inputs)} inputs; give an .npz with arrays {list(g.inputs)}"
            )
        arrays = {g.inputs[0]: loaded}
    else:
        missing = [name for name in g.inputs if name not in loaded.files]
        if missing:
            raise CompileError(f"{path}: no array for input(s) {missing}; the file holds {loaded.files}")
        arrays = {name: loaded[name] for name in g.inputs}
    return {name: as_samples(a, g, name, path) for name, a in arrays.items()}


def as_samples(a: np.ndarray, g: Graph, name: str, where: str) -> np.ndarray:
    """Validate one input's samples and shape them N x (1, *sample shape)."""
    shape = g.tensors[name].shape
    if not np.issubdtype(a.dtype, np.number) or np.issubdtype(a.dtype, np.complexfloating):
        raise CompileError(f"{where}: input '{name}' data has dtype {a.dtype}; give float32 samples")
    a = np.asarray(a, np.float32)
    if a.shape == tuple(shape):
        a = a[None]
    elif a.shape[1:] == tuple(shape[1:]):
        a = a[:, None]
    elif a.shape[2:] != tuple(shape[1:]) or a.ndim != len(shape) + 1 or a.shape[1] != shape[0]:
        raise CompileError(
            f"{where}: input '{name}' data has shape {a.shape}; expected N x {tuple(shape[1:])} for model shape {shape}"
        )
    if a.shape[0] == 0:
        raise CompileError(f"{where}: input '{name}' has no samples")
    if not np.all(np.isfinite(a)):
        raise CompileError(f"{where}: input '{name}' data holds NaN or infinity; clean the calibration data")
    return a


def random_calibration(g: Graph, seed: int = 0) -> dict[str, np.ndarray]:
    print(
        "warning: no calibration data given; using random-normal inputs, so activation ranges (and accuracy) "
        "are guesses. Pass --calibration FILE.npy with real samples.",
        file=sys.stderr,
    )
    for name in g.inputs:
        validate.check_size(f"the random calibration set of input '{printable(name)}'",
                            (RANDOM_CALIBRATION_SAMPLES, *g.tensors[name].shape), 4)  # fmt: skip
    rng = np.random.default_rng(seed)
    return {
        name: rng.standard_normal((RANDOM_CALIBRATION_SAMPLES, *g.tensors[name].shape)).astype(np.float32)
        for name in g.inputs
    }


def collect_ranges(
    g: Graph, samples: Mapping[str, np.ndarray], percentile: float | None = None
) -> dict[str, tuple[float, float]]:
    """(min, max) of every computed tensor over all samples; with `percentile`, the p-th and (100-p)-th percentiles."""
    count = len(next(iter(samples.values())))
    seen: dict[str, list[np.ndarray]] = {}
    for i in range(count):
        values = run_float(g, {name: s[i] for name, s in samples.items()})
        for name, v in values.items():
            if g.tensors[name].data is not None:
                continue
            if percentile is None:
                v = np.array([v.min(), v.max()])
            seen.setdefault(name, []).append(np.asarray(v, np.float64).ravel())
    ranges = {}
    for name, parts in seen.items():
        flat = np.concatenate(parts)
        if percentile is None:
            ranges[name] = (float(flat.min()), float(flat.max()))
        else:
            ranges[name] = (float(np.percentile(flat, 100 - percentile)), float(np.percentile(flat, percentile)))
    return ranges


def bias_corrections(g: Graph, samples: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per weighted node (Conv, ConvTranspose, Gemm) whose weights the compiler quantizes itself: the mean error
    that rounding the weights to int8 adds to each output channel over the calibration data, E[op(x, W - W_q)].

    Rounding each weight is unbiased, but a channel's sum of rounded weights times inputs with a non-zero mean
    (after ReLU, say) is not: with few taps (depthwise 3x3) the offset is a visible share of the channel's
    signal. Adding this mean to the float bias before it is quantized removes it (empirical bias correction,
    Nagel et al. 2019). The op's own float reference computes the error term, so pads and strides count exactly.
    """
    errors: dict[str, np.ndarray] = {}
    for node in g.nodes:
        op = registry.get(node.op, node.name)
        for index, axis in op.weight_axis.items():
            w = g.tensors[node.inputs[index]]
            if w.data is None or w.quant is not None:  # a QDQ model's weights are kept as given
                continue
            q, wq = quantize_weights_per_channel(w.data, axis)
            shape = [1] * q.ndim
            shape[axis] = -1
            errors[node.name] = np.asarray(w.data, np.float64) - q * wq.scale.astype(np.float64).reshape(shape)
    if not errors:
        return {}
    count = len(next(iter(samples.values())))
    sums: dict[str, np.ndarray] = {}
    for i in range(count):
        values = run_float(g, {name: s[i] for name, s in samples.items()})
        for node in g.nodes:
            if node.name not in errors:
                continue
            args = [values.get(t) if t else None for t in node.inputs[:2]]
            args[1] = errors[node.name]
            (y,) = registry.get(node.op, node.name).reference(node, *args)  # the clamp is applied outside it
            y = np.asarray(y, np.float64)
            channel_axis = 1 if y.ndim == 4 else y.ndim - 1  # NCHW maps, [..., features] for Gemm
            per_channel = np.moveaxis(y, channel_axis, 0).reshape(y.shape[channel_axis], -1).mean(axis=1)
            sums[node.name] = sums.get(node.name, 0.0) + per_channel
    return {name: total / count for name, total in sums.items()}
