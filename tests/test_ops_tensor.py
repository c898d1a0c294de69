"""Concat, Split, Slice, Gather, channel shuffle and reductions over any axes, in the NHWC layout: C == int8
reference bit for bit (sanitizers), float reference == onnxruntime, int8 SQNR vs onnxruntime."""

from __future__ import annotations

import io

import numpy as np
import onnx
import pytest
import torch
from onnx import helper

from conftest import check_model, make_model

RNG = np.random.default_rng(11)


def _conv(name, x, cin, cout, k=1):
    w = f"{name}_w"
    node = helper.make_node("Conv", [x, w], [name], kernel_shape=[k, k], pads=[k // 2] * 4)
    return node, {w: RNG.standard_normal((cout, cin, k, k)).astype(np.float32) * 0.4}


@pytest.mark.parametrize("axis", [1, 2, 3, -1, 0])
def test_concat_of_differently_scaled_branches(axis):
    """Two convolutions with different output ranges (so one input is requantized) joined along any axis."""
    a, wa = _conv("a", "x", 3, 4)
    b, wb = _conv("b", "x", 3, 4, k=3)
    scale = helper.make_node("Conv", ["x", "s_w"], ["s"], kernel_shape=[1, 1])
    nodes = [a, b, scale, helper.make_node("Concat", ["a", "b", "s"], ["y"], axis=axis)]
    inits = {**wa, **wb, "s_w": RNG.standard_normal((4, 3, 1, 1)).astype(np.float32) * 3}
    check_model(make_model(nodes, {"x": (1, 3, 6, 5)}, ["y"], inits), (1, 3, 6, 5))


def test_concat_of_rank2_features():
    nodes = [
        helper.make_node("Gemm", ["x", "w1"], ["a"], transB=1),
        helper.make_node("Gemm", ["x", "w2"], ["b"], transB=1),
        helper.make_node("Concat", ["a", "b", "a"], ["y"], axis=1),
    ]
    inits = {"w1": RNG.standard_normal((5, 8)).astype(np.float32), "w2": RNG.standard_normal((3, 8)).astype(np.float32)}
    check_model(make_model(nodes, {"x": (1, 8)}, ["y"], inits), (1, 8))


@pytest.mark.parametrize("opset,split,parts", [(13, [2, 6], 2), (13, None, 2), (18, None, 3), (11, [3, 3, 2], 3)])
def test_split_channels_then_convolve_each(opset, split, parts):
    outs = [f"p{i}" for i in range(parts)]
    attrs = {"axis": 1}
    inputs = ["x"]
    inits = {}
    if split is not None and opset >= 13:
        inputs.append("split")
        inits["split"] = np.array(split, np.int64)
    elif split is not None:
        attrs["split"] = split
    if opset >= 18 and split is None:
        attrs["num_outputs"] = parts
    nodes = [helper.make_node("Split", inputs, outs, **attrs)]
    sizes = split or ([3, 3, 2] if parts == 3 else [4, 4])
    for i, (o, c) in enumerate(zip(outs, sizes)):
        conv, w = _conv(f"c{i}", o, c, 2)
        nodes.append(conv)
        inits.update(w)
    nodes.append(helper.make_node("Concat", [f"c{i}" for i in range(parts)], ["y"], axis=1))
    check_model(make_model(nodes, {"x": (1, 8, 5, 5)}, ["y"], inits, opset=opset), (1, 8, 5, 5))


SLICES = [
    # starts, ends, axes, steps
    ([1], [3], [1], None),
    ([0, 1], [4, -1], [2, 3], None),
    ([-1], [-100], [2], [-1]),
    ([5, 0], [0, 100], [3, 1], [-2, 2]),
    ([0], [1], [0], None),
]


@pytest.mark.parametrize("case", SLICES, ids=[f"slice{i}" for i in range(len(SLICES))])
def test_slice(case):
    starts, ends, axes, steps = case
    inits = {k: np.array(v, np.int64) for k, v in (("st", starts), ("en", ends), ("ax", axes), ("sp", steps)) if v}
    node = helper.make_node("Slice", ["x", *inits], ["y"])
    check_model(make_model([node], {"x": (1, 4, 6, 7)}, ["y"], inits), (1, 4, 6, 7))


def test_gather_channels_and_rows():
    nodes = [
        helper.make_node("Gather", ["x", "ch"], ["g"], axis=1),
        helper.make_node("Gather", ["g", "rows"], ["y"], axis=2),
    ]
    inits = {"ch": np.array([3, 0, 0, -1], np.int64), "rows": np.array([4, 1], np.int64)}
    check_model(make_model(nodes, {"x": (1, 5, 6, 3)}, ["y"], inits), (1, 5, 6, 3))


class _Shuffle(torch.nn.Module):
    def __init__(self, groups):
        super().__init__()
        self.groups = groups
        self.conv = torch.nn.Conv2d(12, 12, 1)

    def forward(self, x):
        n, c, h, w = x.shape
        x = self.conv(x)
        x = x.view(n, self.groups, c // self.groups, h, w).transpose(1, 2).contiguous().view(n, c, h, w)
        return torch.relu(x)


@pytest.mark.parametrize("groups", [2, 3])
def test_shufflenet_channel_shuffle_is_one_transpose(groups):
    torch.manual_seed(groups)
    f = io.BytesIO()
    torch.onnx.export(_Shuffle(groups).eval(), torch.randn(1, 12, 5, 5), f, opset_version=13, dynamo=False)
    model = onnx.load_from_string(f.getvalue())
    compiled, _ = check_model(model, (1, 12, 5, 5))
    assert "Gather" in [n.op for n in compiled.float_graph.nodes]
    kernels = [c.kernel for c in compiled.program.calls]
    assert kernels.count("mcu_transpose_s8") == 3  # caller's NCHW -> NHWC, the shuffle, NHWC -> caller's NCHW


REDUCTIONS = [
    ("ReduceMean", [1], 1),
    ("ReduceMean", [2], 0),
    ("ReduceMean", [1, 3], 0),
    ("ReduceMean", None, 1),
    ("ReduceSum", [2, 3], 1),
    ("ReduceMax", [1], 0),
    ("ReduceMax", [2, 3], 1),
    ("ReduceMin", [3], 0),
]


@pytest.mark.parametrize("op,axes,keepdims", REDUCTIONS, ids=[f"{o}{i}" for i, (o, _, _) in enumerate(REDUCTIONS)])
@pytest.mark.parametrize("opset", [13, 18])
def test_reduction_over_any_axes(op, axes, keepdims, opset):
    inits = {}
    attrs = {"keepdims": keepdims}
    inputs = ["x"]
    if axes is not None:
        if opset >= 18 or op == "ReduceSum":
            inputs.append("axes")
            inits["axes"] = np.array(axes, np.int64)
        else:
            attrs["axes"] = axes
    model = make_model([helper.make_node(op, inputs, ["y"], **attrs)], {"x": (1, 4, 5, 6)}, ["y"], inits, opset=opset)
    # A reduction has few outputs per sample: calibrate on enough samples to see their range (the test's
    # 16 samples must not fall outside it, or saturation, not arithmetic, decides the SQNR).
    calib = np.random.default_rng(1).standard_normal((1000, 1, 4, 5, 6)).astype(np.float32)
    check_model(model, (1, 4, 5, 6), calib=calib)


def test_reduction_of_rank3_tensor():
    nodes = [helper.make_node("ReduceMax", ["x"], ["y"], axes=[1], keepdims=0)]
    check_model(make_model(nodes, {"x": (2, 7, 3)}, ["y"]), (2, 7, 3))
