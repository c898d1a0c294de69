"""PRelu with a per-channel slope (mcu_prelu_s8, TFLite's int8 PRELU), softmax written out with Exp, ReduceMax,
Sub, ReduceSum and Div (folded into one Softmax), and LogSoftmax (Softmax, then a Log table)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from onnx import helper
from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
from torch import nn

import mcucompile
from conftest import check_model, make_model
from mcucompile import CompileError
from test_passes import export, randomize_bn
from test_qdq import _Reader, lsb_vs_onnxruntime

SHAPE = (1, 4, 6, 6)


def _kernels(compiled):
    """The kernels run, without the layout copies of the caller's NCHW buffers."""
    return [c.kernel for c in compiled.program.calls if c.kernel != "mcu_transpose_s8"]


def _prelu(slope: np.ndarray, shape=SHAPE):
    return make_model([helper.make_node("PRelu", ["x", "s"], ["y"])], {"x": shape}, ["y"], {"s": slope})


@pytest.mark.parametrize("slope_shape", [(4, 1, 1), (1, 4, 1, 1)])
def test_prelu_per_channel_slope(slope_shape):
    slope = np.linspace(-0.6, 0.9, 4, dtype=np.float32).reshape(slope_shape)
    compiled, _ = check_model(_prelu(slope), SHAPE)
    assert _kernels(compiled) == ["mcu_prelu_s8"]


def test_prelu_scalar_slope_is_still_one_table():
    compiled, _ = check_model(_prelu(np.array([0.25], np.float32)), SHAPE)
    assert _kernels(compiled) == ["mcu_lut_s8"]


@pytest.mark.parametrize(
    "slope_shape,why",
    [((3, 1, 1), "does not broadcast"), ((1, 1, 4, 6, 6), "does not broadcast")],
)
def test_prelu_slope_that_does_not_broadcast_is_refused(slope_shape, why):
    slope = np.full(slope_shape, 0.1, np.float32)
    with pytest.raises(CompileError, match=why):
        mcucompile.compile(_prelu(slope), name="m")


def test_prelu_computed_slope_is_refused():
    """A slope computed from another tensor (a slope that is a function of x itself is one lookup table)."""
    nodes = [helper.make_node("Sigmoid", ["z"], ["s"]), helper.make_node("PRelu", ["x", "s"], ["y"])]
    with pytest.raises(CompileError, match="slope must be a constant"):
        mcucompile.compile(make_model(nodes, {"x": SHAPE, "z": SHAPE}, ["y"]), name="m")


def test_prelu_with_a_slope_computed_from_its_input_is_one_table():
    nodes = [helper.make_node("Sigmoid", ["x"], ["s"]), helper.make_node("PRelu", ["x", "s"], ["y"])]
    compiled, _ = check_model(make_model(nodes, {"x": SHAPE}, ["y"]), SHAPE)
    assert _kernels(compiled).count("mcu_lut_s8") == 1


@pytest.mark.parametrize("opset", [13, 17])
def test_pytorch_prelu_per_channel_after_conv_bn(opset):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.PReLU(8))
    with torch.no_grad():
        net[2].weight.uniform_(-0.5, 0.5)
    model = export(randomize_bn(net), (1, 3, 8, 8), opset=opset)
    compiled, _ = check_model(model, (1, 3, 8, 8))
    assert _kernels(compiled) == ["mcu_conv_s8_fast", "mcu_prelu_s8"]


def test_qdq_prelu_from_onnxruntime_within_one_lsb(tmp_path):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, 1, 1), nn.PReLU(8), nn.Conv2d(8, 8, 1), nn.PReLU(8))
    with torch.no_grad():
        for m in net:
            if isinstance(m, nn.PReLU):
                m.weight.uniform_(-0.5, 0.5)
    float_path, qdq_path = tmp_path / "float.onnx", tmp_path / "qdq.onnx"
    onnx.save(export(net, (1, 3, 8, 8)), float_path)
    rng = np.random.default_rng(0)
    quantize_static(
        str(float_path),
        str(qdq_path),
        _Reader(rng.standard_normal((32, 1, 3, 8, 8)).astype(np.float32)),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QInt8,
        weight_type=QuantType.QInt8,
        op_types_to_quantize=["Conv", "PRelu"],  # onnxruntime leaves PRelu float unless asked
    )
    compiled = mcucompile.compile(qdq_path, name="q")
    assert _kernels(compiled) == ["mcu_conv_s8_fast", "mcu_prelu_s8", "mcu_conv_s8_fast", "mcu_prelu_s8"]
    slope = next(n.inputs[1] for n in compiled.float_graph.nodes if n.op == "PRelu")
    assert compiled.float_graph.tensors[slope].quant is not None  # the model's own slope quantization is kept
    lsb = lsb_vs_onnxruntime(compiled, onnx.load(qdq_path), rng.standard_normal((32, 1, 3, 8, 8)).astype(np.float32))
    print(f"QDQ PRelu vs onnxruntime: {np.mean(lsb == 0) * 100:.2f} % exact, max {int(lsb.max())} LSB")
    assert np.mean(lsb <= 1) >= 0.99


ROWS = (3, 10)
CALIB = np.random.default_rng(0).standard_normal((32, *ROWS)).astype(np.float32) * 3


def _written_softmax(shift: bool, axis=-1, shape=ROWS, exp_also_output=False, opset=13):
    nodes, src = [], "x"
    if shift:
        nodes += [
            helper.make_node("ReduceMax", ["x"], ["m"], axes=[axis], keepdims=1),
            helper.make_node("Sub", ["x", "m"], ["d"]),
        ]
        src = "d"
    nodes += [
        helper.make_node("Exp", [src], ["e"]),
        helper.make_node("ReduceSum", ["e", "axes"], ["s"], keepdims=1),  # axes as an input (opset 13)
        helper.make_node("Div", ["e", "s"], ["y"]),
    ]
    outputs = ["y", "e"] if exp_also_output else ["y"]
    return make_model(nodes, {"x": shape}, outputs, {"axes": np.array([axis], np.int64)}, opset=opset)


@pytest.mark.parametrize("shift", [True, False], ids=["minus_max", "plain"])
def test_written_out_softmax_is_one_softmax_call(shift):
    # As test_ops.test_softmax: the 1/256 output step bounds the SQNR, the error is what matters.
    compiled, acc = check_model(_written_softmax(shift), ROWS, calib=CALIB, min_sqnr=15)
    assert [n.op for n in compiled.float_graph.nodes] == ["Softmax"]
    assert _kernels(compiled) == ["mcu_softmax_s8"]
    assert acc.max_abs_error <= 1 / 256 + 0.5 * compiled.graph.tensors["x"].quant.s


def test_log_softmax_op_and_log_of_softmax():
    op = make_model([helper.make_node("LogSoftmax", ["x"], ["y"], axis=-1)], {"x": ROWS}, ["y"])
    pattern = make_model(
        [helper.make_node("Softmax", ["x"], ["p"], axis=-1), helper.make_node("Log", ["p"], ["y"])], {"x": ROWS}, ["y"]
    )
    for model in (op, pattern):
        compiled, _ = check_model(model, ROWS)
        assert _kernels(compiled) == ["mcu_softmax_s8", "mcu_lut_s8"]
        # log 0 (a probability below half a step of 1/256) is the most negative output value
        assert compiled.program.calls[-1].arrays["table"][0] == -128


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
@pytest.mark.parametrize("axis", [1, 2, -1, 0])
def test_softmax_on_any_axis_of_a_feature_map(op, axis):
    """Channels (innermost in NHWC memory) run as they lie; other axes are moved there by two transposes."""
    model = make_model([helper.make_node(op, ["x"], ["y"], axis=axis)], {"x": SHAPE}, ["y"])
    compiled, acc = check_model(model, SHAPE, min_sqnr=15 if op == "Softmax" else 25)
    assert _kernels(compiled).count("mcu_softmax_s8") == 1


def test_written_out_softmax_over_the_last_axis_of_a_feature_map_folds():
    compiled, _ = check_model(_written_softmax(True, shape=SHAPE), SHAPE, min_sqnr=15)
    assert [n.op for n in compiled.float_graph.nodes].count("Softmax") == 1


def test_softmax_pattern_that_must_not_fold_runs_as_written():
    """exp(x - max) / its sum over axis 0 is not a Softmax of the kernel: the Div by the computed sum becomes a
    multiply by its reciprocal (a lookup table), and the whole still matches onnxruntime."""
    compiled, _ = check_model(_written_softmax(True, axis=0), ROWS, calib=CALIB, min_sqnr=15)
    ops = [n.op for n in compiled.float_graph.nodes]
    assert "Softmax" not in ops and "Div" not in ops and "Mul" in ops, ops


def test_softmax_pattern_with_its_exp_read_elsewhere_does_not_fold():
    compiled = mcucompile.compile(_written_softmax(True, exp_also_output=True), name="m", calibration=CALIB)
    ops = [n.op for n in compiled.float_graph.nodes]
    assert "Softmax" not in ops and "Div" not in ops and "Mul" in ops, ops


def test_shifted_input_read_elsewhere_still_folds_the_exp_over_sum():
    """x - max also feeds an Add: the max and Sub stay, exp(d) / sum(exp(d)) alone becomes Softmax(d)."""
    model = _written_softmax(True)
    model.graph.node.append(helper.make_node("Add", ["y", "d"], ["z"]))
    model.graph.output[0].name = "z"
    compiled, _ = check_model(model, ROWS, calib=CALIB)
    assert [n.op for n in compiled.float_graph.nodes] == ["ReduceMax", "Sub", "Softmax", "Add"]
