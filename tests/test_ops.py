"""Per op: the C output equals the numpy int8 reference bit for bit (built with ASan/UBSan), the float reference
matches onnxruntime, and the int8 result keeps a high SQNR against onnxruntime (catches shared semantic bugs)."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from onnx import helper

from conftest import check_model, make_model

RNG = np.random.default_rng(7)


@pytest.fixture(autouse=True)
def _rng_per_test(request):
    """Each test draws its weights from its own seed, so a test sees the same data alone or in the whole file."""
    global RNG
    RNG = np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))


def _w(*shape):
    return RNG.standard_normal(shape).astype(np.float32) * 0.5


CONV_CASES = [
    # (in_ch, out_ch, hw, kernel, strides, pads, dilations, group, auto_pad)
    (3, 8, (9, 9), (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1, None),
    (3, 8, (10, 11), (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 1, None),
    (4, 6, (8, 8), (1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1, None),
    (2, 5, (12, 10), (5, 3), (2, 1), (2, 0, 1, 1), (1, 1), 1, None),
    (3, 4, (11, 11), (3, 3), (1, 1), (2, 2, 2, 2), (2, 2), 1, None),
    (3, 4, (9, 10), (3, 3), (2, 2), None, (1, 1), 1, "SAME_UPPER"),
    (3, 4, (9, 10), (4, 4), (2, 2), None, (1, 1), 1, "SAME_LOWER"),
    (3, 4, (9, 10), (3, 3), (1, 2), None, (1, 1), 1, "VALID"),
    (8, 8, (9, 9), (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 8, None),
    (8, 8, (10, 10), (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 8, None),
    (6, 6, (9, 9), (5, 5), (1, 1), (2, 2, 2, 2), (1, 1), 6, None),
    (4, 8, (9, 9), (3, 3), (1, 1), (0, 1, 2, 1), (2, 1), 4, None),  # depth multiplier 2
]


@pytest.mark.parametrize("case", CONV_CASES, ids=[f"conv{i}" for i in range(len(CONV_CASES))])
@pytest.mark.parametrize("with_bias", [True, False])
def test_conv(case, with_bias):
    cin, cout, hw, k, s, p, d, group, auto_pad = case
    attrs = dict(kernel_shape=list(k), strides=list(s), dilations=list(d), group=group)
    if auto_pad:
        attrs["auto_pad"] = auto_pad
    else:
        attrs["pads"] = list(p)
    inits = {"W": _w(cout, cin // group, *k)}
    if with_bias:
        inits["B"] = _w(cout)
    node = helper.make_node("Conv", ["x", "W", "B"] if with_bias else ["x", "W"], ["y"], **attrs)
    check_model(make_model([node], {"x": ("N", cin, *hw)}, ["y"], inits), (1, cin, *hw))


@pytest.mark.parametrize("act", ["relu", "relu6", "clip"])
def test_conv_with_fused_activation(act):
    nodes = [helper.make_node("Conv", ["x", "W", "B"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1])]
    inits = {"W": _w(6, 3, 3, 3), "B": _w(6)}
    if act == "relu":
        nodes.append(helper.make_node("Relu", ["c"], ["y"]))
    else:
        lo, hi = (0.0, 6.0) if act == "relu6" else (-0.5, 1.5)
        inits.update(lo=np.array(lo, np.float32), hi=np.array(hi, np.float32))
        nodes.append(helper.make_node("Clip", ["c", "lo", "hi"], ["y"]))
    compiled, _ = check_model(make_model(nodes, {"x": (1, 3, 8, 8)}, ["y"], inits), (1, 3, 8, 8))
    assert [n.op for n in compiled.float_graph.nodes] == ["Conv"]


@pytest.mark.parametrize("trans_b,alpha,beta", [(1, 1.0, 1.0), (0, 0.5, 2.0)])
def test_gemm(trans_b, alpha, beta):
    w = _w(10, 16) if trans_b else _w(16, 10)
    node = helper.make_node("Gemm", ["x", "W", "B"], ["y"], transB=trans_b, alpha=alpha, beta=beta)
    check_model(make_model([node], {"x": ("N", 16)}, ["y"], {"W": w, "B": _w(10)}), (1, 16))


def test_matmul_plus_bias_add_becomes_one_gemm():
    nodes = [helper.make_node("MatMul", ["x", "W"], ["m"]), helper.make_node("Add", ["m", "B"], ["y"])]
    compiled, _ = check_model(make_model(nodes, {"x": (1, 12)}, ["y"], {"W": _w(12, 7), "B": _w(7)}), (1, 12))
    assert [n.op for n in compiled.float_graph.nodes] == ["Gemm"]


def test_matmul_of_a_sequence_is_one_fully_connected_layer():
    """[1, T, K] @ W[K, O] + b: the T rows are contiguous, so it is one fully connected call over T rows."""
    nodes = [helper.make_node("MatMul", ["x", "W"], ["m"]), helper.make_node("Add", ["m", "B"], ["y"])]
    compiled, _ = check_model(make_model(nodes, {"x": (1, 5, 12)}, ["y"], {"W": _w(12, 7), "B": _w(7)}), (1, 5, 12))
    assert [c.kernel for c in compiled.program.calls] == ["mcu_fully_connected_s8"]


POOL_CASES = [
    ((2, 2), (2, 2), (0, 0, 0, 0), 0, 0),
    ((3, 3), (2, 2), (1, 1, 1, 1), 0, 0),
    ((3, 3), (2, 2), (1, 1, 1, 1), 1, 0),
    ((3, 2), (1, 2), (1, 0, 1, 1), 1, 0),
    ((3, 3), (2, 2), (0, 0, 0, 0), 0, 1),  # ceil_mode
    ((2, 2), (2, 2), (1, 1, 0, 0), 1, 1),
]


@pytest.mark.parametrize("op", ["MaxPool", "AveragePool"])
@pytest.mark.parametrize("case", POOL_CASES, ids=[f"pool{i}" for i in range(len(POOL_CASES))])
def test_pool(op, case):
    k, s, p, include_pad, ceil = case
    attrs = dict(kernel_shape=list(k), strides=list(s), pads=list(p), ceil_mode=ceil)
    if op == "AveragePool":
        attrs["count_include_pad"] = include_pad
    node = helper.make_node(op, ["x"], ["y"], **attrs)
    check_model(make_model([node], {"x": (1, 5, 9, 10)}, ["y"], opset=13), (1, 5, 9, 10))


@pytest.mark.parametrize("op", ["GlobalAveragePool", "ReduceMean", "ReduceMean_keep0"])
def test_spatial_mean(op):
    if op == "GlobalAveragePool":
        node = helper.make_node(op, ["x"], ["y"])
    else:
        node = helper.make_node("ReduceMean", ["x"], ["y"], axes=[2, 3], keepdims=0 if op.endswith("0") else 1)
    check_model(make_model([node], {"x": (1, 7, 6, 5)}, ["y"]), (1, 7, 6, 5))


def test_reduce_mean_opset18_axes_input():
    node = helper.make_node("ReduceMean", ["x", "axes"], ["y"], keepdims=1)
    model = make_model([node], {"x": (1, 4, 5, 5)}, ["y"], {"axes": np.array([-2, -1], np.int64)}, opset=18)
    check_model(model, (1, 4, 5, 5))


@pytest.mark.parametrize("scale_b", [1.0, 0.1, 7.0])
def test_add_two_tensors_with_different_scales(scale_b):
    nodes = [
        helper.make_node("Mul", ["x", "k"], ["b"]),
        helper.make_node("Conv", ["x", "W"], ["a"], kernel_shape=[1, 1]),
        helper.make_node("Add", ["a", "b"], ["y"]),
    ]
    # The Mul by a constant is folded into... nothing: make b a real tensor via a 1x1 conv instead.
    nodes[0] = helper.make_node("Conv", ["x", "W2"], ["b"], kernel_shape=[1, 1])
    inits = {"W": _w(4, 4, 1, 1), "W2": _w(4, 4, 1, 1) * scale_b}
    check_model(make_model(nodes, {"x": (1, 4, 6, 6)}, ["y"], inits), (1, 4, 6, 6))


def test_add_with_fused_relu():
    nodes = [
        helper.make_node("Conv", ["x", "W"], ["a"], kernel_shape=[1, 1]),
        helper.make_node("Add", ["a", "x"], ["s"]),
        helper.make_node("Relu", ["s"], ["y"]),
    ]
    compiled, _ = check_model(make_model(nodes, {"x": (1, 4, 5, 5)}, ["y"], {"W": _w(4, 4, 1, 1)}), (1, 4, 5, 5))
    assert [n.op for n in compiled.float_graph.nodes] == ["Conv", "Add"]


@pytest.mark.parametrize("op", ["Relu", "Clip"])
def test_standalone_activation_in_place(op):
    # After a max pool the activation cannot fuse: it runs as mcu_clamp_s8 over its dead input.
    inits = {"lo": np.array(-0.3, np.float32), "hi": np.array(0.8, np.float32)}
    act = helper.make_node(op, ["p"] + (["lo", "hi"] if op == "Clip" else []), ["y"])
    nodes = [helper.make_node("MaxPool", ["x"], ["p"], kernel_shape=[2, 2], strides=[2, 2]), act]
    compiled, _ = check_model(
        make_model(nodes, {"x": (1, 3, 8, 8)}, ["y"], inits if op == "Clip" else {}), (1, 3, 8, 8), min_sqnr=20
    )
    assert [c.kernel for c in compiled.program.calls][-1] in ("mcu_clamp_s8", "mcu_transpose_s8")


@pytest.mark.parametrize("depth", [2, 10, 100])
def test_softmax(depth):
    node = helper.make_node("Softmax", ["x"], ["y"], axis=-1)
    calib = np.random.default_rng(0).standard_normal((32, 3, depth)).astype(np.float32) * 3
    # The output step is 1/256 (TFLite's convention), so long rows have a low SQNR by construction. The
    # meaningful bound: one output step plus the input's rounding (half a step) times the softmax's slope (<= 1/2).
    compiled, acc = check_model(make_model([node], {"x": (3, depth)}, ["y"]), (3, depth), calib=calib, min_sqnr=15)
    s_in = compiled.graph.tensors["x"].quant.s
    assert acc.max_abs_error <= 1 / 256 + 0.5 * s_in


@pytest.mark.parametrize("op", ["Flatten", "Reshape", "Squeeze", "Unsqueeze"])
def test_views_cost_no_copy(op):
    conv = helper.make_node("Conv", ["x", "W"], ["c"], kernel_shape=[1, 1])
    pool = helper.make_node("GlobalAveragePool", ["c"], ["g"])
    inits = {"W": _w(6, 3, 1, 1)}
    if op == "Flatten":
        view = helper.make_node("Flatten", ["g"], ["v"], axis=1)
    elif op == "Reshape":
        view = helper.make_node("Reshape", ["g", "shape"], ["v"])
        inits["shape"] = np.array([1, -1], np.int64)
    elif op == "Squeeze":
        view = helper.make_node("Squeeze", ["g", "axes"], ["v"])
        inits["axes"] = np.array([2, 3], np.int64)
    else:
        view = helper.make_node("Unsqueeze", ["g", "axes"], ["v"])
        inits["axes"] = np.array([4], np.int64)
    fc = (
        helper.make_node("Gemm", ["v", "W2"], ["y"], transB=1)
        if op != "Unsqueeze"
        else helper.make_node("Relu", ["v"], ["y"])
    )
    inits["W2"] = _w(4, 6)
    # Three random layers with a pool that shrinks the signal: 13 to 37 dB over 16 weight seeds; a view adds no
    # error of its own (the bit-exact and float checks cover it), a wrong byte order would give about 0 dB.
    compiled, _ = check_model(
        make_model([conv, pool, view, fc], {"x": (1, 3, 5, 5)}, ["y"], inits), (1, 3, 5, 5), min_sqnr=10
    )
    assert "mcu_transpose_s8" not in [c.kernel for c in compiled.program.calls[1:]]


def test_flatten_of_a_feature_map_reorders_to_onnx_order():
    # C x H x W flatten of an NHWC tensor needs a real copy: the result must still equal onnxruntime's.
    nodes = [
        helper.make_node("Conv", ["x", "W"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Flatten", ["c"], ["f"]),
        helper.make_node("Gemm", ["f", "W2"], ["y"], transB=1),
    ]
    inits = {"W": _w(4, 2, 3, 3), "W2": _w(5, 4 * 6 * 6)}
    check_model(make_model(nodes, {"x": (1, 2, 6, 6)}, ["y"], inits), (1, 2, 6, 6))


def test_nchw_output_is_returned_in_onnx_order():
    node = helper.make_node("Conv", ["x", "W"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    check_model(make_model([node], {"x": (1, 3, 7, 5)}, ["y"], {"W": _w(4, 3, 3, 3)}), (1, 3, 7, 5))


def test_batchnorm_standalone_becomes_depthwise_affine():
    c = 5
    inits = {
        "s": RNG.uniform(0.5, 2, c).astype(np.float32),
        "b": _w(c),
        "m": _w(c),
        "v": RNG.uniform(0.5, 2, c).astype(np.float32),
    }
    node = helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], epsilon=1e-3)
    compiled, _ = check_model(make_model([node], {"x": (1, c, 6, 6)}, ["y"], inits), (1, c, 6, 6))
    assert [n.op for n in compiled.float_graph.nodes] == ["Conv"]
