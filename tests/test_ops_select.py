"""Max, Min, comparisons, And/Or and Where of several computed tensors (ops/select.py): masks stored as int8 0/1.

Oracles: the C equals the int8 reference bit for bit (sanitizers), the float reference equals onnxruntime, the
int8 output keeps its SQNR against onnxruntime's float model, and a mask disagrees with onnxruntime's only where
the two compared values are within the int8 rounding of each other.
"""

from __future__ import annotations

import tempfile

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from conftest import check_model, make_model, ort_run, torch_export
from onnx import helper
from torch import nn
from zoo import ort_quantize

import mcucompile
from mcucompile.verify import CModel, accuracy

SHAPE = (1, 4, 6, 6)
RNG = np.random.default_rng(7)
W = RNG.uniform(0.5, 1.5, SHAPE).astype(np.float32)  # a = x * W and b = x + V: two tensors, no single chain
V = RNG.uniform(-0.5, 0.5, SHAPE).astype(np.float32)
TWO_TENSORS = [helper.make_node("Mul", ["x", "w"], ["a"]), helper.make_node("Add", ["x", "v"], ["b"])]
CONSTANTS = {"w": W, "v": V}


def _model(nodes, initializers=None):
    return make_model(TWO_TENSORS + nodes, {"x": SHAPE}, ["y"], {**CONSTANTS, **(initializers or {})})


def check_discontinuous(model, shape, n_test=16):
    """A choice between values (Where on a comparison) jumps where the compared values are close, and which side
    int8 rounding puts them on decides the pick: no fixed threshold is fair, so the bar is onnxruntime's own
    static quantizer on the same calibration set, less 1 dB (the issue's target)."""
    rng = np.random.default_rng(0)
    calib = rng.standard_normal((64, *shape)).astype(np.float32)
    test = rng.standard_normal((n_test, *shape)).astype(np.float32)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(ort_quantize(model, calib), options, providers=["CPUExecutionProvider"])
    theirs = np.stack([session.run(None, {model.graph.input[0].name: x})[0] for x in test])
    baseline = accuracy(ort_run(model, test), theirs.reshape(n_test, -1)).sqnr_db
    compiled, _ = check_model(model, shape, calib=calib, test=test, min_sqnr=min(baseline - 1.0, 40.0))
    return compiled


def _kernels(compiled):
    return {c.kernel for c in compiled.program.calls}


@pytest.mark.parametrize("op", ["Max", "Min"])
@pytest.mark.parametrize("broadcast", [False, True], ids=["same_shape", "per_channel"])
def test_max_min_of_two_tensors(op, broadcast):
    nodes = [helper.make_node("ReduceMean", ["b"], ["m"], axes=[2, 3])] if broadcast else []
    nodes.append(helper.make_node(op, ["a", "m" if broadcast else "b"], ["y"]))
    compiled, _ = check_model(_model(nodes), SHAPE, min_sqnr=30.0)  # as Add of the same tensors (33 dB)
    assert "mcu_compare_s8" in _kernels(compiled)


def test_max_with_a_constant_array():
    """Max(x, C) with a non-scalar C: a flash operand, not a lookup table."""
    model = make_model([helper.make_node("Max", ["x", "c"], ["y"])], {"x": SHAPE}, ["y"], {"c": V})
    compiled, _ = check_model(model, SHAPE, min_sqnr=30.0)  # as Add of the same tensors (33 dB)
    assert "mcu_compare_s8" in _kernels(compiled)


@pytest.mark.parametrize("cmp", ["Greater", "Less", "GreaterOrEqual", "LessOrEqual"])
def test_where_of_a_two_tensor_comparison(cmp):
    """torch.where(a > b, a, 0.5 b): the mask in the arena, Where requantizing each chosen value."""
    nodes = [
        helper.make_node(cmp, ["a", "b"], ["c"]),
        helper.make_node("Mul", ["b", "half"], ["h"]),
        helper.make_node("Where", ["c", "a", "h"], ["y"]),
    ]
    compiled = check_discontinuous(_model(nodes, {"half": np.array(0.5, np.float32)}), SHAPE)
    assert {"mcu_compare_s8", "mcu_where_s8"} <= _kernels(compiled)


def test_masked_fill_with_a_constant_mask():
    """Where(constant mask, -4, a), as masked_fill exports: the mask broadcast from (1, 1, 6, 6) in flash."""
    mask = np.triu(np.ones((6, 6), bool), 1).reshape(1, 1, 6, 6)
    nodes = [helper.make_node("Where", ["mask", "fill", "a"], ["y"])]
    compiled, _ = check_model(_model(nodes, {"mask": mask, "fill": np.array(-4.0, np.float32)}), SHAPE, min_sqnr=35.0)
    assert "mcu_where_s8" in _kernels(compiled)


def test_where_with_a_scalar_branch():
    """Where(a > b, a, 0): the constant branch stored on the output's grid."""
    nodes = [helper.make_node("Greater", ["a", "b"], ["c"]), helper.make_node("Where", ["c", "a", "zero"], ["y"])]
    check_discontinuous(_model(nodes, {"zero": np.array(0.0, np.float32)}), SHAPE)


def test_a_mask_differs_from_onnxruntime_only_where_the_values_are_close():
    """Cast(a > b) to float as the output: each element 0 or 1, equal to onnxruntime's except where |a - b| is
    within the inputs' int8 steps (which side they round to decides it)."""
    nodes = [helper.make_node("Greater", ["a", "b"], ["c"]), helper.make_node("Cast", ["c"], ["y"], to=1)]
    model = _model(nodes)
    compiled, _ = check_model(model, SHAPE, min_sqnr=-1e9)  # bit-exact C vs reference; float reference vs ORT
    x = np.random.default_rng(3).standard_normal((16, *SHAPE)).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        compiled.write(tmp)
        c_model = CModel(tmp, compiled.name)
        got = np.stack([c_model.run_f32(s) for s in x]).reshape(x.shape)
    expected = ort_run(model, x).reshape(x.shape)
    q = compiled.graph.tensors
    step = max(q["a"].quant.s, q["b"].quant.s)
    assert set(np.unique(got)) <= {0.0, 1.0}
    wrong = got != expected
    assert np.all(np.abs(x * W - (x + V))[wrong] <= 2 * step), "a mask element differs where the values are apart"
    assert wrong.mean() < 0.05


@pytest.mark.parametrize("logic", ["And", "Or"])
def test_and_or_of_masks(logic):
    """(a > b) and/or (b > 0.2 a): the two masks combined as Min/Max, Cast to float for the output."""
    nodes = [
        helper.make_node("Greater", ["a", "b"], ["c1"]),
        helper.make_node("Mul", ["a", "k"], ["ak"]),
        helper.make_node("Greater", ["b", "ak"], ["c2"]),
        helper.make_node(logic, ["c1", "c2"], ["c"]),
        helper.make_node("Where", ["c", "a", "b"], ["y"]),
    ]
    check_discontinuous(_model(nodes, {"k": np.array(0.2, np.float32)}), SHAPE)


class _TwoBranches(nn.Module):
    """Two convolutions combined, then a 1x1 head: the combination's output is quantized on both sides (without
    the head, onnxruntime would return a float Max it never rounds to int8)."""

    def __init__(self, combine):
        super().__init__()
        self.a, self.b, self.combine = nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(3, 8, 3, padding=1), combine
        self.head = nn.Conv2d(8, 4, 1)

    def forward(self, x):
        return self.head(self.combine(self.a(x), self.b(x)))


PYTORCH = {
    "maximum": lambda a, b: torch.maximum(a, b),
    "minimum_relu": lambda a, b: torch.relu(torch.minimum(a, b)),
    "where_greater": lambda a, b: torch.where(a > b, a, 0.5 * b),
    "clamp_by_tensor": lambda a, b: torch.clamp(a, min=b),
}


@pytest.mark.parametrize("dynamo", [False, True], ids=["legacy", "dynamo"])
@pytest.mark.parametrize("name", sorted(PYTORCH))
def test_pytorch_exports(name, dynamo):
    torch.manual_seed(0)
    net, shape = _TwoBranches(PYTORCH[name]).eval(), (1, 3, 8, 8)
    check_discontinuous(torch_export(net, shape, dynamo), shape, n_test=8)


def test_bool_graph_input_is_refused_with_its_name():
    graph = helper.make_graph(
        [helper.make_node("Where", ["m", "x", "z"], ["y"])],
        "t",
        [helper.make_tensor_value_info("m", onnx.TensorProto.BOOL, list(SHAPE)),
         helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, list(SHAPE))],  # fmt: skip
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)],
        [onnx.numpy_helper.from_array(np.array(0.0, np.float32), "z")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    with pytest.raises(mcucompile.CompileError, match="graph input 'm' is bool"):
        mcucompile.compile(model, name="m", calibration=np.zeros((1, *SHAPE), np.float32))
