"""Comparisons, logic, Where, Sign, Shrink and Cast inside functions of one tensor (one lookup table, the bool
values never stored), and division by a computed tensor (a multiply by its reciprocal table).

Oracles: the C equals the int8 reference bit for bit (sanitizers), the float reference equals onnxruntime, and
the int8 output keeps its SQNR against onnxruntime's float model.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from conftest import check_model, make_model, ort_run
from layers import LAYERS, export
from onnx import TensorProto, helper

import mcucompile
from mcucompile.quant import quantize
from mcucompile.verify import run_executable

SHAPE = (1, 4, 6, 6)


def _kernels(compiled):
    return [c.kernel for c in compiled.program.calls if c.kernel != "mcu_transpose_s8"]


def _scalar(name, value):
    return {name: np.array(value, np.float32)}


def check_table(model, shape, seed=0):
    """A function with jumps (comparisons): on inputs near a threshold the int8 input's rounding decides the side,
    so compare with onnxruntime on the dequantized int8 input itself: within 1 LSB of the output grid (the
    table rounds the float64 value, onnxruntime computes in float32)."""
    compiled, _ = check_model(model, shape, min_sqnr=10.0)  # bit-exact C vs reference; float reference vs onnxruntime
    g = compiled.graph
    x = np.random.default_rng(seed).standard_normal((16, *shape)).astype(np.float32)
    in_q, out_q = g.tensors[g.inputs[0]].quant, g.tensors[g.outputs[0]].quant
    q = np.stack([compiled.quantize_input(s) for s in x])
    with tempfile.TemporaryDirectory() as tmp:
        compiled.write(tmp)
        got = run_executable(Path(tmp), "m", q.reshape(len(q), -1)).astype(np.int32)
    reference = ort_run(model, ((q.astype(np.float32) - in_q.zp) * in_q.s).astype(np.float32))
    expected = np.stack([quantize(r, out_q) for r in reference]).reshape(got.shape).astype(np.int32)
    assert np.abs(got - expected).max() <= 1
    return compiled


def test_where_of_a_comparison_is_one_table():
    """A leaky clamp written with Greater and Where: Where(x > 0.3, x, 0.1 x)."""
    nodes = [
        helper.make_node("Greater", ["x", "t"], ["m"]),
        helper.make_node("Mul", ["x", "a"], ["s"]),
        helper.make_node("Where", ["m", "x", "s"], ["y"]),
    ]
    model = make_model(nodes, {"x": SHAPE}, ["y"], {**_scalar("t", 0.3), **_scalar("a", 0.1)})
    compiled = check_table(model, SHAPE)
    assert _kernels(compiled) == ["mcu_lut_s8"]


@pytest.mark.parametrize("logic", ["And", "Or", "Xor"])
def test_logic_of_comparisons_and_cast_is_one_table(logic):
    """Where((x > -1) logic (x < 1), x, cast(not(x >= 0)) - 2): comparisons, logic, Not, Cast bool -> float."""
    nodes = [
        helper.make_node("Greater", ["x", "lo"], ["a"]),
        helper.make_node("Less", ["x", "hi"], ["b"]),
        helper.make_node(logic, ["a", "b"], ["m"]),
        helper.make_node("GreaterOrEqual", ["x", "zero"], ["p"]),
        helper.make_node("Not", ["p"], ["q"]),
        helper.make_node("Cast", ["q"], ["f"], to=TensorProto.FLOAT),
        helper.make_node("Sub", ["f", "two"], ["e"]),
        helper.make_node("Where", ["m", "x", "e"], ["y"]),
    ]
    consts = {**_scalar("lo", -1.0), **_scalar("hi", 1.0), **_scalar("zero", 0.0), **_scalar("two", 2.0)}
    compiled = check_table(make_model(nodes, {"x": SHAPE}, ["y"], consts), SHAPE)
    assert _kernels(compiled) == ["mcu_lut_s8"]


@pytest.mark.parametrize("op,attrs", [("Sign", {}), ("Shrink", dict(lambd=0.4, bias=0.1)), ("Shrink", {})])
def test_sign_and_shrink(op, attrs):
    model = make_model([helper.make_node(op, ["x"], ["y"], **attrs)], {"x": SHAPE}, ["y"])
    compiled = check_table(model, SHAPE)
    assert _kernels(compiled) == ["mcu_lut_s8"]


@pytest.mark.parametrize("name", ["softshrink", "hardshrink", "softsign", "lppool2d", "tanhshrink"])
@pytest.mark.parametrize("opset,dynamo", [(13, False), (9, False), (18, True)])
def test_pytorch_layers_of_comparisons_and_division(name, opset, dynamo):
    model = export(name, opset, dynamo)
    if name == "hardshrink":  # jumps by lambda at +-lambda: see check_table
        check_table(model, LAYERS[name].shape)
    else:
        check_model(model, LAYERS[name].shape, min_sqnr=30.0, n_test=6)


def test_division_by_a_computed_tensor_is_a_multiply_by_its_reciprocal():
    """x / (mean(|x|) over the channels + 1): the divisor's chain (+1, 1/d) is one table, then an int8 multiply."""
    nodes = [
        helper.make_node("Abs", ["x"], ["a"]),
        helper.make_node("ReduceMean", ["a"], ["m"], axes=[1], keepdims=1),
        helper.make_node("Add", ["m", "one"], ["d"]),
        helper.make_node("Div", ["x", "d"], ["y"]),
    ]
    compiled, _ = check_model(make_model(nodes, {"x": SHAPE}, ["y"], _scalar("one", 1.0), opset=13), SHAPE)
    kernels = _kernels(compiled)
    assert "mcu_mul_s8" in kernels and kernels.count("mcu_lut_s8") == 2, kernels  # |x|, then 1 / (m + 1)


def test_xor_of_two_computed_masks_is_refused_before_calibration():
    """Comparisons, And/Or and Where of two tensors have kernels (test_ops_select.py); Xor of two masks has none."""
    nodes = [
        helper.make_node("Sigmoid", ["x"], ["s"]),
        helper.make_node("Greater", ["s", "z"], ["m1"]),
        helper.make_node("Less", ["s", "z"], ["m2"]),
        helper.make_node("Xor", ["m1", "m2"], ["m"], name="either"),
        helper.make_node("Where", ["m", "s", "z"], ["y"], name="choose"),
    ]
    model = make_model(nodes, {"x": SHAPE, "z": SHAPE}, ["y"])
    with pytest.raises(mcucompile.CompileError, match="'either' \\(Xor\\): supported only as part of a function"):
        mcucompile.compile(model, name="m")