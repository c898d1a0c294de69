"""Add, Sub, Mul and Div by a constant with ONNX broadcasting -> mcu_add_s8 / mcu_mul_s8 (TFLite's ADD, SUB, MUL).

conftest.check_model: C == int8 reference bit for bit (ASan/UBSan), float reference == onnxruntime, SQNR >= 25 dB.
The broadcast cases cover each way an operand meets the NHWC output: per channel, per pixel, a scalar, lower ranks,
and a rank-3 tensor (row-major CHW) against a rank-4 one (NHWC)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import helper
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

import mcucompile
from conftest import check_model, make_model
from test_qdq import lsb_vs_onnxruntime

SHAPE = (1, 4, 5, 6)
RNG = np.random.default_rng(11)


def _c(*shape, low=0.5, high=1.5):
    """A constant away from 0 with both signs; the same for a shape whatever tests run before."""
    rng = np.random.default_rng([7, *shape])
    return (rng.uniform(low, high, shape) * rng.choice([-1, 1], shape)).astype(np.float32)


def _kernels(compiled):
    return [c.kernel for c in compiled.program.calls if c.kernel != "mcu_transpose_s8"]


def _last_binary(compiled):
    return [c for c in compiled.program.calls if c.kernel in ("mcu_add_s8", "mcu_mul_s8")][-1]


def _conv(src, dst, w="W"):
    return helper.make_node("Conv", [src, w], [dst], kernel_shape=[1, 1])


W = {"W": (RNG.standard_normal((4, 4, 1, 1)) * 0.5).astype(np.float32)}
W2 = RNG.standard_normal((4, 4, 1, 1)).astype(np.float32)


def test_squeeze_excitation_gating():
    nodes = [
        _conv("x", "c"),
        helper.make_node("GlobalAveragePool", ["c"], ["p"]),
        _conv("p", "q", "W2"),
        helper.make_node("Sigmoid", ["q"], ["s"]),
        helper.make_node("Mul", ["c", "s"], ["y"]),  # [1,C,H,W] * [1,C,1,1]
    ]
    inits = {**W, "W2": W2}
    compiled, _ = check_model(make_model(nodes, {"x": SHAPE}, ["y"], inits), SHAPE)
    mul = next(c for c in compiled.program.calls if c.kernel == "mcu_mul_s8")
    assert mul.overlap_gap == 0 and mul.params["in2_strides"][-1] == 1  # gate walks channels, reused per pixel


@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div"])
@pytest.mark.parametrize("const_shape", [(4, 1, 1), (1, 4, 1, 1), (1, 1, 5, 6), (6,), (5, 1)])
def test_tensor_with_constant(op, const_shape):
    nodes = [_conv("x", "c"), helper.make_node(op, ["c", "k"], ["y"])]
    compiled, _ = check_model(make_model(nodes, {"x": SHAPE}, ["y"], {**W, "k": _c(*const_shape)}), SHAPE)
    assert _kernels(compiled)[-1] == ("mcu_add_s8" if op in ("Add", "Sub") else "mcu_mul_s8")
    assert _last_binary(compiled).arrays["constant"].size == int(np.prod(const_shape))


@pytest.mark.parametrize("op", ["Sub", "Add"])
def test_constant_first(op):
    nodes = [_conv("x", "c"), helper.make_node(op, ["k", "c"], ["y"])]
    check_model(make_model(nodes, {"x": SHAPE}, ["y"], {**W, "k": _c(1, 4, 1, 1)}), SHAPE)


@pytest.mark.parametrize("op", ["Sub", "Add", "Mul"])
@pytest.mark.parametrize("order", ["ab", "ba"])
def test_two_tensors_spatial_gate_and_scalar(op, order):
    """x with a per-pixel [1,1,H,W] mean over channels, then with a [1,1,1,1] mean of everything."""
    nodes = [
        _conv("x", "c"),
        helper.make_node("ReduceMean", ["c"], ["m"], axes=[1], keepdims=1),
        helper.make_node("ReduceMean", ["c"], ["s"], keepdims=1),
        helper.make_node(op, ["c", "m"] if order == "ab" else ["m", "c"], ["d"]),
        helper.make_node(op, ["d", "s"] if order == "ab" else ["s", "d"], ["y"]),
    ]
    check_model(make_model(nodes, {"x": SHAPE}, ["y"], W), SHAPE)


def test_rank0_computed_scalar():
    nodes = [
        _conv("x", "c"),
        helper.make_node("ReduceMax", ["c"], ["s"], keepdims=0),  # shape ()
        helper.make_node("Sub", ["c", "s"], ["y"]),
    ]
    check_model(make_model(nodes, {"x": SHAPE}, ["y"], W), SHAPE)


def test_rank3_row_major_against_rank4_nhwc():
    """A CHW tensor (row-major) times an NCHW one (stored NHWC): the strides come from each one's own layout."""
    nodes = [
        _conv("x", "c"),
        helper.make_node("Reshape", ["x", "shape3"], ["r"]),
        helper.make_node("Mul", ["c", "r"], ["y"]),
    ]
    inits = {**W, "shape3": np.array(SHAPE[1:], np.int64)}
    check_model(make_model(nodes, {"x": SHAPE}, ["y"], inits), SHAPE)


def test_rank2_and_rank3():
    nodes = [
        helper.make_node("Gemm", ["x", "G"], ["g"], transB=1),  # [1, 8]
        helper.make_node("ReduceMax", ["g"], ["m"], axes=[1], keepdims=1),  # [1, 1]
        helper.make_node("Add", ["g", "m"], ["d"]),
        helper.make_node("Mul", ["d", "k"], ["e"]),  # * [8]
        helper.make_node("Reshape", ["e", "shape"], ["r"]),  # [2, 1, 4]
        helper.make_node("Add", ["r", "k3"], ["y"]),  # + [3, 1] -> [2, 3, 4]
    ]
    inits = {
        "G": np.random.default_rng(3).standard_normal((8, 6)).astype(np.float32),
        "k": _c(8),
        "shape": np.array([2, 1, 4], np.int64),
        "k3": _c(3, 1),
    }
    check_model(make_model(nodes, {"x": (1, 6)}, ["y"], inits), (1, 6))


def test_same_shape_tensors_are_one_flat_loop():
    nodes = [_conv("x", "a"), _conv("x", "b", "W2"), helper.make_node("Mul", ["a", "b"], ["y"])]
    inits = {**W, "W2": W2}
    compiled, _ = check_model(make_model(nodes, {"x": SHAPE}, ["y"], inits), SHAPE)
    assert _last_binary(compiled).params["out_dims"] == (1, 1, 1, int(np.prod(SHAPE)))


@pytest.mark.parametrize("op", ["Mul", "Sub", "Div"])
def test_fused_relu(op):
    nodes = [_conv("x", "c"), helper.make_node(op, ["c", "k"], ["m"]), helper.make_node("Relu", ["m"], ["y"])]
    compiled, _ = check_model(make_model(nodes, {"x": SHAPE}, ["y"], {**W, "k": _c(4, 1, 1)}), SHAPE)
    assert [n.op for n in compiled.float_graph.nodes] == ["Conv", op]
    assert _last_binary(compiled).params["act_min"] == compiled.graph.tensors["y"].quant.zp


def test_division_of_two_computed_tensors_multiplies_by_a_reciprocal_table():
    """x / (sigmoid(conv(x)) + 0.5): the divisor's chain and its reciprocal are one table, then an int8 multiply."""
    nodes = [_conv("x", "c"), helper.make_node("Sigmoid", ["c"], ["s"]), helper.make_node("Add", ["s", "h"], ["d"]),
             helper.make_node("Div", ["x", "d"], ["y"], name="div")]  # fmt: skip
    model = make_model(nodes, {"x": SHAPE}, ["y"], {**W, "h": np.array(0.5, np.float32)})
    compiled, _ = check_model(model, SHAPE)
    kernels = [c.kernel for c in compiled.program.calls]
    assert kernels.count("mcu_lut_s8") == 1 and "mcu_mul_s8" in kernels, kernels


class _Reader(CalibrationDataReader):
    def __init__(self, samples):
        self._it = iter(samples)

    def get_next(self):
        x = next(self._it, None)
        return None if x is None else {"x": x}


@pytest.mark.parametrize("op", ["Mul", "Add"])
def test_onnxruntime_qdq_model_matches_within_one_lsb(tmp_path, op):
    """quantize_static (QDQ) of x * k and x + k, k per channel: its scales are kept, C within 1 LSB of onnxruntime."""
    model = make_model([helper.make_node(op, ["x", "k"], ["y"])], {"x": SHAPE}, ["y"], {"k": _c(1, 4, 1, 1)})
    float_path, qdq_path = tmp_path / "float.onnx", tmp_path / "qdq.onnx"
    onnx.save(model, float_path)
    rng = np.random.default_rng(0)
    quantize_static(
        str(float_path),
        str(qdq_path),
        _Reader(rng.standard_normal((16, *SHAPE)).astype(np.float32)),
        quant_format=QuantFormat.QDQ,
        activation_type=QuantType.QInt8,
        weight_type=QuantType.QInt8,
    )
    qdq = onnx.load(qdq_path)
    assert any(n.op_type == "DequantizeLinear" and n.input[0].startswith("k") for n in qdq.graph.node)
    compiled = mcucompile.compile(qdq_path, name="q")
    assert _kernels(compiled) == [f"mcu_{op.lower()}_s8"]
    given = {i.name: onnx.numpy_helper.to_array(i) for i in qdq.graph.initializer}
    np.testing.assert_array_equal(_last_binary(compiled).arrays["constant"].ravel(), given["k_quantized"].ravel())
    lsb = lsb_vs_onnxruntime(compiled, qdq, rng.standard_normal((16, *SHAPE)).astype(np.float32))
    assert lsb.max() <= 1
