"""Pointwise ops as 256-entry lookup tables: every unary activation alone, and single-input chains
(SiLU, HardSwish of opset 13, Gelu's erf formula, scalar arithmetic) fused into one table.

Besides conftest's checks (C == int8 reference bit for bit under sanitizers, float reference == onnxruntime,
SQNR), the table must be exact to the output quantization: onnxruntime's float result on the dequantized int8
input, rounded to the output grid, is what the C returns (within half a step of float32 noise)."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from conftest import check_model, make_model, ort_run

SHAPE = (1, 4, 6, 6)


def _assert_exact_to_output_quantization(compiled, model, n=8, seed=3):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, *SHAPE)).astype(np.float32) * 2
    q_in = np.stack([compiled.quantize_input(s) for s in x])
    got = compiled.run_reference(q_in).astype(np.float64)
    in_q = compiled.graph.tensors[compiled.graph.inputs[0]].quant
    out_q = compiled.graph.tensors[compiled.graph.outputs[0]].quant
    x_hat = ((q_in.astype(np.float32) - in_q.zp) * in_q.s).astype(np.float32)
    truth = ort_run(model, x_hat).reshape(got.shape).astype(np.float64)
    truth = np.where(np.isnan(truth), 0.0, truth)
    ideal = np.clip(truth / out_q.s + out_q.zp, -128, 127)
    # float32 evaluation in onnxruntime vs float64 tables: allow a hair beyond the half step.
    assert np.max(np.abs(got - ideal)) <= 0.5 + 1e-3


def _kernels(compiled):
    """The kernels run, without the layout copies of the caller's NCHW buffers."""
    return [c.kernel for c in compiled.program.calls if c.kernel != "mcu_transpose_s8"]


def _single(op, **attrs):
    return make_model([helper.make_node(op, ["x"], ["y"], **attrs)], {"x": SHAPE}, ["y"], opset=17)


UNARY_CASES = [
    ("Sigmoid", {}),
    ("HardSigmoid", {}),
    ("HardSigmoid", {"alpha": 0.25, "beta": 0.4}),
    ("HardSwish", {}),
    ("Tanh", {}),
    ("LeakyRelu", {"alpha": 0.1}),
    ("Elu", {"alpha": 0.7}),
    ("Selu", {}),
    ("Celu", {"alpha": 2.0}),
    ("Softplus", {}),
    ("Softsign", {}),
    ("Erf", {}),
    ("Exp", {}),
    ("Neg", {}),
    ("Abs", {}),
]


@pytest.mark.parametrize("op,attrs", UNARY_CASES, ids=[f"{o}{i}" for i, (o, _) in enumerate(UNARY_CASES)])
def test_unary_activation_is_one_exact_table(op, attrs):
    model = _single(op, **attrs)
    # Calibrate over [-4, 4] so the test inputs (standard normal) stay inside the range: the fast-growing Exp
    # would otherwise be judged on clipping outliers rather than on its table.
    calib = np.random.default_rng(2).uniform(-4, 4, (64, *SHAPE)).astype(np.float32)
    compiled, _ = check_model(model, SHAPE, calib=calib)
    assert _kernels(compiled) == ["mcu_lut_s8"]
    _assert_exact_to_output_quantization(compiled, model)


def test_log_of_positive_inputs_and_nan_free_table():
    model = make_model(
        [helper.make_node("Exp", ["x"], ["e"]), helper.make_node("Log", ["e"], ["y"])], {"x": SHAPE}, ["y"]
    )
    compiled, _ = check_model(model, SHAPE, min_sqnr=30.0)
    assert _kernels(compiled) == ["mcu_lut_s8"]  # log(exp(x)) is one table


def _chain(nodes, inits=None, opset=13):
    return make_model(nodes, {"x": SHAPE}, ["y"], inits, opset=opset)


SCALARS = {"three": np.array(3.0, np.float32), "six": np.array(6.0, np.float32), "half": np.array(0.5, np.float32)}


CHAINS = {
    # x * sigmoid(x): PyTorch's SiLU export
    "silu": [helper.make_node("Sigmoid", ["x"], ["s"]), helper.make_node("Mul", ["x", "s"], ["y"])],
    # x * hardsigmoid(x): PyTorch's HardSwish export before opset 14
    "hardswish13": [
        helper.make_node("HardSigmoid", ["x"], ["h"], alpha=1.0 / 6, beta=0.5),
        helper.make_node("Mul", ["x", "h"], ["y"]),
    ],
    # relu6(x + 3) / 6 * x, written with scalar constants
    "hardswish_arith": [
        helper.make_node("Add", ["x", "three"], ["a"]),
        helper.make_node("Clip", ["a", "zero", "six"], ["c"]),
        helper.make_node("Div", ["c", "six"], ["d"]),
        helper.make_node("Mul", ["d", "x"], ["y"]),
    ],
    # PyTorch's Gelu export: x * 0.5 * (1 + erf(x / sqrt 2))
    "gelu": [
        helper.make_node("Div", ["x", "sqrt2"], ["d"]),
        helper.make_node("Erf", ["d"], ["e"]),
        helper.make_node("Add", ["e", "one"], ["a"]),
        helper.make_node("Mul", ["x", "a"], ["m"]),
        helper.make_node("Mul", ["m", "half"], ["y"]),
    ],
    "tanh_minus_pow": [
        helper.make_node("Tanh", ["x"], ["t"]),
        helper.make_node("Pow", ["x", "two"], ["p"]),
        helper.make_node("Sub", ["t", "p"], ["y"]),
    ],
    "prelu_scalar_max_min": [
        helper.make_node("PRelu", ["x", "half"], ["p"]),
        helper.make_node("Max", ["p", "neg_one"], ["m"]),
        helper.make_node("Min", ["m", "three"], ["y"]),
    ],
}
CHAIN_CONSTS = {
    **SCALARS,
    "zero": np.array(0.0, np.float32),
    "one": np.array(1.0, np.float32),
    "two": np.array(2.0, np.float32),
    "neg_one": np.array(-1.0, np.float32),
    "sqrt2": np.array(np.sqrt(2.0), np.float32),
}


@pytest.mark.parametrize("chain", sorted(CHAINS))
def test_single_input_chain_fuses_into_one_table(chain):
    nodes = CHAINS[chain]
    used = {t for n in nodes for t in n.input}
    model = _chain(nodes, {k: v for k, v in CHAIN_CONSTS.items() if k in used})
    # Calibrated over the test inputs' range, as for the unary ops: x^2 would otherwise be judged on clipping.
    compiled, _ = check_model(model, SHAPE, calib=np.random.default_rng(2).uniform(-4, 4, (64, *SHAPE)).astype(np.float32))
    assert [n.op for n in compiled.float_graph.nodes] == ["PointwiseLut"]
    assert _kernels(compiled) == ["mcu_lut_s8"]
    _assert_exact_to_output_quantization(compiled, model)


def test_chain_after_conv_reads_the_conv_output_and_shared_values_stay_tensors():
    """conv -> silu, and the sigmoid value is also read by a second branch: two tables of the conv output."""
    rng = np.random.default_rng(5)
    nodes = [
        helper.make_node("Conv", ["x", "W"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Sigmoid", ["c"], ["s"]),
        helper.make_node("Mul", ["c", "s"], ["silu"]),
        helper.make_node("Conv", ["s", "W2"], ["k"], kernel_shape=[1, 1]),
        helper.make_node("Conv", ["silu", "W2"], ["j"], kernel_shape=[1, 1]),
        helper.make_node("Concat", ["k", "j"], ["y"], axis=1),
    ]
    inits = {"W": rng.standard_normal((4, 4, 3, 3)).astype(np.float32) * 0.3, "W2": np.eye(4, dtype=np.float32)[..., None, None]}
    model = make_model(nodes, {"x": SHAPE}, ["y"], inits)
    compiled, _ = check_model(model, SHAPE)
    ops = [n.op for n in compiled.float_graph.nodes]
    assert ops.count("PointwiseLut") == 2 and "Sigmoid" not in ops and "Mul" not in ops


def test_lone_relu_stays_a_clamp():
    model = make_model(
        [helper.make_node("Concat", ["x", "x"], ["c"], axis=1), helper.make_node("Relu", ["c"], ["y"])],
        {"x": SHAPE},
        ["y"],
    )
    compiled, _ = check_model(model, (1, 4, 6, 6))
    assert "mcu_clamp_s8" in [c.kernel for c in compiled.program.calls]


def test_scalar_constant_of_rank_3_in_a_chain():
    """Found by the fuzzer: x[1,1,H,W] * c[1,1,1] is a scalar multiple, one table of 256 entries."""
    shape = (1, 1, 5, 5)
    model = make_model([helper.make_node("Mul", ["x", "c"], ["y"])], {"x": shape}, ["y"], {"c": np.full((1, 1, 1), 0.7, np.float32)})
    compiled, _ = check_model(model, shape)
    assert _kernels(compiled) == ["mcu_lut_s8"]
