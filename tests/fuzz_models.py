"""Random valid ONNX models from the supported op set, for differential fuzzing (tests/test_fuzz.py and
benchmarks/fuzz.py). A model is a function of one integer seed, so every failure is reproducible."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


class _Builder:
    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.count = 0

    def name(self, hint: str) -> str:
        self.count += 1
        return f"{hint}{self.count}"

    def const(self, value: np.ndarray) -> str:
        name = self.name("c")
        self.inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def node(self, op: str, inputs: list[str], **attrs) -> str:
        out = self.name("t")
        self.nodes.append(helper.make_node(op, inputs, [out], name=self.name(op.lower()), **attrs))
        return out

    def weights(self, *shape) -> str:
        scale = self.rng.uniform(0.1, 1.0) / np.sqrt(max(1, int(np.prod(shape[1:]))))
        return self.const((self.rng.standard_normal(shape) * scale).astype(np.float32))


def _conv(b: _Builder, x: str, c: int, h: int, w: int) -> tuple[str, int, int, int]:
    rng = b.rng
    depthwise = c > 1 and rng.random() < 0.4
    kh, kw = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    sh, sw = int(rng.integers(1, 3)), int(rng.integers(1, 3))
    dh, dw = (int(rng.integers(1, 3)) for _ in range(2)) if rng.random() < 0.2 else (1, 1)
    pads = [int(rng.integers(0, k)) for k in (kh, kw, kh, kw)]
    oh = (h + pads[0] + pads[2] - dh * (kh - 1) - 1) // sh + 1
    ow = (w + pads[1] + pads[3] - dw * (kw - 1) - 1) // sw + 1
    if oh < 1 or ow < 1:
        return x, c, h, w
    out_c = c * int(rng.integers(1, 3)) if depthwise else int(rng.integers(1, 9))
    group = c if depthwise else 1
    inputs = [x, b.weights(out_c, c // group, kh, kw)]
    if rng.random() < 0.7:
        inputs.append(b.const((rng.standard_normal(out_c) * 0.2).astype(np.float32)))
    y = b.node("Conv", inputs, kernel_shape=[kh, kw], strides=[sh, sw], pads=pads, dilations=[dh, dw], group=group)
    return y, out_c, oh, ow


def _pool(b: _Builder, x: str, c: int, h: int, w: int) -> tuple[str, int, int, int]:
    rng = b.rng
    k = int(rng.integers(1, min(h, w, 3) + 1))
    s = int(rng.integers(1, 3))
    p = int(rng.integers(0, k))
    op = "MaxPool" if rng.random() < 0.5 else "AveragePool"
    attrs = dict(kernel_shape=[k, k], strides=[s, s], pads=[p, p, p, p])
    if op == "AveragePool":
        attrs["count_include_pad"] = int(rng.integers(0, 2))
    o = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    return b.node(op, [x], **attrs), c, *o


UNARY_OPS = ("Sigmoid", "Tanh", "HardSwish", "HardSigmoid", "LeakyRelu", "Elu", "Softplus")  # HardSwish needs opset 14


def _branch_concat(b: _Builder, x: str, c: int, h: int, w: int) -> tuple[str, int, int, int]:
    """x and a 1x1-conv branch of it concatenated on channels (SqueezeNet/ShuffleNet style), maybe sliced back."""
    rng = b.rng
    extra = int(rng.integers(1, 5))
    branch = b.node("Conv", [x, b.weights(extra, c, 1, 1)], kernel_shape=[1, 1])
    parts = [x, branch] if rng.random() < 0.5 else [branch, x]
    y, c = b.node("Concat", parts, axis=1), c + extra
    if rng.random() < 0.5 and c > 1:
        start = int(rng.integers(0, c - 1))
        stop = int(rng.integers(start + 1, c + 1))
        y = b.node("Slice", [y, *(b.const(np.array([v], np.int64)) for v in (start, stop, 1))])
        c = stop - start
    return y, c, h, w


def _squeeze_excite(b: _Builder, x: str, c: int) -> str:
    """x * sigmoid(conv(mean(x))): a per-channel gate broadcast over H and W (Mul of [1,C,H,W] by [1,C,1,1])."""
    gate = b.node("Conv", [b.node("GlobalAveragePool", [x]), b.weights(c, c, 1, 1)], kernel_shape=[1, 1])
    return b.node("Mul", [x, b.node(str(b.rng.choice(["Sigmoid", "HardSigmoid"])), [gate])])


def _spatial(b: _Builder, x: str, c: int, h: int, w: int) -> tuple[str, int, int, int]:
    """Pad (constant/reflect/edge), nearest x2 Resize, or a ConvTranspose."""
    rng = b.rng
    kind = rng.choice(["pad", "resize", "convT"])
    if kind == "pad" and min(h, w) > 1:
        p = [int(v) for v in rng.integers(0, 2, 4)]
        mode = str(rng.choice(["constant", "reflect", "edge"]))
        pads = b.const(np.array([0, 0, p[0], p[1], 0, 0, p[2], p[3]], np.int64))
        return b.node("Pad", [x, pads], mode=mode), c, h + p[0] + p[2], w + p[1] + p[3]
    if kind == "resize" and h * w <= 64:
        scales = b.const(np.array([1, 1, 2, 2], np.float32))
        return b.node("Resize", [x, "", scales], mode="nearest"), c, 2 * h, 2 * w
    k, s = int(rng.integers(2, 4)), int(rng.integers(1, 3))
    out_c = int(rng.integers(1, 6))
    y = b.node("ConvTranspose", [x, b.weights(c, out_c, k, k)], kernel_shape=[k, k], strides=[s, s])
    return y, out_c, (h - 1) * s + k, (w - 1) * s + k


def random_model(seed: int) -> tuple[onnx.ModelProto, tuple[int, ...]]:
    """(model, input shape) with 1-6 layers of Conv, pool, clamp, lookup-table activation, BatchNorm, residual Add,
    channel concat (+ slice), squeeze-excitation, per-channel affine, Pad, Resize or ConvTranspose; optional head."""
    rng = np.random.default_rng(seed)
    b = _Builder(rng)
    c, h, w = int(rng.integers(1, 6)), int(rng.integers(3, 11)), int(rng.integers(3, 11))
    shape = (1, c, h, w)
    x = "input"
    for _ in range(int(rng.integers(1, 7))):
        kind = rng.choice(["conv", "conv", "pool", "act", "bn", "residual", "unary", "concat", "se", "spatial", "affine"])
        if kind == "conv":
            x, c, h, w = _conv(b, x, c, h, w)
        elif kind == "pool":
            x, c, h, w = _pool(b, x, c, h, w)
        elif kind == "act":
            if rng.random() < 0.5:
                x = b.node("Relu", [x])
            else:
                lo = float(rng.uniform(-1, 0))
                x = b.node("Clip", [x, b.const(np.float32(lo)), b.const(np.float32(lo + rng.uniform(0.5, 6)))])
        elif kind == "unary":
            x = b.node(str(rng.choice(UNARY_OPS)), [x])
        elif kind == "concat":
            x, c, h, w = _branch_concat(b, x, c, h, w)
        elif kind == "se":
            x = _squeeze_excite(b, x, c)
        elif kind == "spatial":
            x, c, h, w = _spatial(b, x, c, h, w)
        elif kind == "affine":  # a per-channel constant scale or shift, broadcast over H and W
            op = str(rng.choice(["Mul", "Add", "Sub"]))
            x = b.node(op, [x, b.const(rng.uniform(0.5, 1.5, (c, 1, 1)).astype(np.float32))])
        elif kind == "bn":
            gamma, beta = rng.uniform(0.5, 2, c), rng.standard_normal(c) * 0.2
            mean, var = rng.standard_normal(c) * 0.2, rng.uniform(0.5, 2, c)
            params = [b.const(v.astype(np.float32)) for v in (gamma, beta, mean, var)]
            x = b.node("BatchNormalization", [x, *params], epsilon=float(rng.uniform(1e-5, 1e-2)))
        else:  # a branch through a 1x1 conv, added back: residual Add with two different scales
            branch = b.node("Conv", [x, b.weights(c, c, 1, 1)], kernel_shape=[1, 1])
            if rng.random() < 0.5:
                branch = b.node("Relu", [branch])
            x = b.node("Add", [x, branch] if rng.random() < 0.5 else [branch, x])
    if rng.random() < 0.6:
        x = b.node("GlobalAveragePool", [x]) if rng.random() < 0.5 else b.node("ReduceMean", [x], axes=[2, 3])
        x = b.node("Flatten", [x])
        n_out = int(rng.integers(2, 12))
        x = b.node("Gemm", [x, b.weights(n_out, c), b.const(np.zeros(n_out, np.float32))], transB=1)
        if rng.random() < 0.5:
            x = b.node("Softmax", [x], axis=-1)
    graph = helper.make_graph(
        b.nodes, f"fuzz{seed}", [helper.make_tensor_value_info("input", TensorProto.FLOAT, list(shape))],
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, None)], b.inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 8
    return model, shape
