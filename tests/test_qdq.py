"""Pre-quantized (QDQ) models from onnxruntime's quantizer: the scales are honoured, never re-calibrated, and the
C agrees with onnxruntime running the same QDQ model within 1 LSB (onnxruntime requantizes in float)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import helper
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
from torch import nn

import mcucompile
from conftest import make_model, ort_run
from mcucompile import CompileError
from mcucompile.verify import CModel, accuracy, run_executable
from test_passes import export


class _Reader(CalibrationDataReader):
    def __init__(self, samples):
        self._it = iter(samples)

    def get_next(self):
        x = next(self._it, None)
        return None if x is None else {"x": x}


def ort_quantized(tmp: Path, activation_type) -> tuple[Path, np.ndarray]:
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 16, 3, 2, 1),
        nn.ReLU(),
        nn.Conv2d(16, 16, 3, 1, 1, groups=16),
        nn.ReLU6(),
        nn.Conv2d(16, 32, 1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(32, 10),
    )
    float_path, qdq_path = tmp / "float.onnx", tmp / "qdq.onnx"
    onnx.save(export(net, (1, 3, 32, 32)), float_path)
    rng = np.random.default_rng(0)
    calib = rng.standard_normal((32, 1, 3, 32, 32)).astype(np.float32)
    quantize_static(
        str(float_path),
        str(qdq_path),
        _Reader(calib),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=activation_type,
        weight_type=QuantType.QInt8,
    )
    return qdq_path, rng.standard_normal((32, 1, 3, 32, 32)).astype(np.float32)


def lsb_vs_onnxruntime(compiled, qdq_model: onnx.ModelProto, test: np.ndarray) -> np.ndarray:
    """|C - onnxruntime| in output LSB, both fed the same float samples (quantized as onnxruntime does)."""
    in_q = compiled.graph.tensors[compiled.graph.inputs[0]].quant
    out_q = compiled.graph.tensors[compiled.graph.outputs[0]].quant
    # onnxruntime's QuantizeLinear rounds halves to even; feed the C exactly the int8 values it computed.
    q_in = np.clip(np.rint(test / in_q.s) + in_q.zp, -128, 127).astype(np.int8)
    with tempfile.TemporaryDirectory() as tmp:
        compiled.write(tmp)
        got = run_executable(Path(tmp), compiled.name, q_in.reshape(len(test), -1)).astype(np.int32)
    ort_q = np.rint(ort_run(qdq_model, test).reshape(len(test), -1) / out_q.s) + out_q.zp
    return np.abs(got - ort_q)


@pytest.mark.parametrize("activation_type", [QuantType.QInt8, QuantType.QUInt8], ids=["int8", "uint8"])
def test_onnxruntime_quantized_model_matches_onnxruntime_within_one_lsb(tmp_path, activation_type):
    qdq_path, test = ort_quantized(tmp_path, activation_type)
    model = onnx.load(qdq_path)
    compiled = mcucompile.compile(qdq_path, name="q")
    lsb = lsb_vs_onnxruntime(compiled, model, test)
    print(
        f"onnxruntime QDQ vs C: {np.mean(lsb == 0) * 100:.2f} % exact, {np.mean(lsb <= 1) * 100:.2f} % within 1 LSB, "
        f"max {int(lsb.max())} LSB over {lsb.size} outputs"
    )
    assert np.mean(lsb <= 1) >= 0.99


def test_qdq_scales_are_honoured_not_recalibrated(tmp_path):
    qdq_path, _ = ort_quantized(tmp_path, QuantType.QInt8)
    model = onnx.load(qdq_path)
    scales = {
        n.input[0]: float(onnx.numpy_helper.to_array(next(i for i in model.graph.initializer if i.name == n.input[1])))
        for n in model.graph.node
        if n.op_type == "QuantizeLinear"
    }
    wild = np.full((4, 1, 3, 32, 32), 100.0, np.float32)  # calibration data that would change every range
    compiled = mcucompile.compile(qdq_path, name="q", calibration=wild)
    checked = 0
    for name, t in compiled.graph.tensors.items():
        if name in scales and t.quant is not None:
            assert t.quant.s == pytest.approx(scales[name], rel=0, abs=0)
            checked += 1
    assert checked >= 4


def test_qoperator_format_is_rejected_with_a_clear_message(tmp_path):
    x = helper.make_tensor_value_info("x", onnx.TensorProto.INT8, [1, 4])
    y = helper.make_tensor_value_info("y", onnx.TensorProto.INT8, [1, 4])
    node = helper.make_node("QLinearMatMul", ["x", "s", "z", "w", "s", "z", "s", "z"], ["y"], name="qmm")
    inits = [
        onnx.numpy_helper.from_array(np.array(0.1, np.float32), "s"),
        onnx.numpy_helper.from_array(np.array(0, np.int8), "z"),
        onnx.numpy_helper.from_array(np.ones((4, 4), np.int8), "w"),
    ]
    model = helper.make_model(
        helper.make_graph([node], "g", [x], [y], inits), opset_imports=[helper.make_opsetid("", 13)]
    )
    with pytest.raises(CompileError, match="QuantFormat.QDQ"):
        mcucompile.compile(model, name="q")


def test_float_weights_with_quantize_linear_are_quantized_exactly():
    rng = np.random.default_rng(3)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    w_scale = (np.abs(w).reshape(4, -1).max(1) / 127).astype(np.float32)
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"]),
        helper.make_node("DequantizeLinear", ["xq", "xs", "xz"], ["xd"]),
        helper.make_node("QuantizeLinear", ["W", "ws", "wz"], ["Wq"], axis=0),
        helper.make_node("DequantizeLinear", ["Wq", "ws", "wz"], ["Wd"], axis=0),
        helper.make_node("Conv", ["xd", "Wd"], ["c"], kernel_shape=[3, 3]),
        helper.make_node("QuantizeLinear", ["c", "cs", "xz"], ["y"]),
    ]
    inits = {
        "W": w,
        "ws": w_scale,
        "wz": np.zeros(4, np.int8),
        "xs": np.array(0.02, np.float32),
        "xz": np.array(3, np.int8),
        "cs": np.array(0.1, np.float32),
    }
    model = make_model(nodes, {"x": (1, 3, 6, 6)}, [], inits)
    model.graph.output.append(helper.make_tensor_value_info("y", onnx.TensorProto.INT8, None))
    compiled = mcucompile.compile(model, name="q")
    from mcucompile.ops.conv import unpack_conv_fast

    call = next(c for c in compiled.program.calls if c.kernel == "mcu_conv_s8_fast")
    weights = unpack_conv_fast(call.arrays["weights"], call.params["filter_dims"])  # packed in the kernel's order
    expected = np.clip(np.rint(w / w_scale[:, None, None, None]), -128, 127).astype(np.int8).transpose(0, 2, 3, 1)
    np.testing.assert_array_equal(weights, expected)
    x = rng.standard_normal((8, 1, 3, 6, 6)).astype(np.float32)
    ort = ort_run(model, x).reshape(8, -1).astype(np.int32)
    q_in = np.clip(np.rint(x / 0.02) + 3, -128, 127).astype(np.int8)
    ours = compiled.run_reference(q_in).reshape(8, -1).astype(np.int32)
    assert np.abs(ours - ort).max() <= 1


def test_gemm_with_float_weights_behind_quantize_linear_compiles_and_agrees_with_onnxruntime():
    """PyTorch's QAT export leaves a Linear's weights as float -> QuantizeLinear -> DequantizeLinear."""
    rng = np.random.default_rng(4)
    w = rng.standard_normal((5, 12)).astype(np.float32)
    w_scale = (np.abs(w).max(1) / 127).astype(np.float32)
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"]),
        helper.make_node("DequantizeLinear", ["xq", "xs", "xz"], ["xd"]),
        helper.make_node("QuantizeLinear", ["W", "ws", "wz"], ["Wq"], axis=0),
        helper.make_node("DequantizeLinear", ["Wq", "ws", "wz"], ["Wd"], axis=0),
        helper.make_node("Gemm", ["xd", "Wd", "B"], ["c"], transB=1),
        helper.make_node("QuantizeLinear", ["c", "cs", "xz"], ["y"]),
    ]
    inits = {
        "W": w,
        "B": rng.standard_normal(5).astype(np.float32),
        "ws": w_scale,
        "wz": np.zeros(5, np.int8),
        "xs": np.array(0.02, np.float32),
        "xz": np.array(3, np.int8),
        "cs": np.array(0.1, np.float32),
    }
    model = make_model(nodes, {"x": (1, 12)}, [], inits)
    model.graph.output.append(helper.make_tensor_value_info("y", onnx.TensorProto.INT8, None))
    compiled = mcucompile.compile(model, name="q")
    x = rng.standard_normal((16, 1, 12)).astype(np.float32)
    ort = ort_run(model, x).reshape(16, -1).astype(np.int32)
    q_in = np.clip(np.rint(x / 0.02) + 3, -128, 127).astype(np.int8)
    ours = compiled.run_reference(q_in).reshape(16, -1).astype(np.int32)
    assert np.abs(ours - ort).max() <= 1


def test_export_qdq_round_trip_agrees_with_the_c(tmp_path):
    """The compiler's own int8 model as QDQ ONNX, run by onnxruntime, against the generated C."""
    from mcucompile.qdq_export import write_qdq
    from test_e2e import ResNetBlock
    from test_passes import randomize_bn

    torch.manual_seed(0)
    model = export(randomize_bn(ResNetBlock()), (1, 3, 16, 16))
    rng = np.random.default_rng(0)
    compiled = mcucompile.compile(model, name="r", calibration=rng.standard_normal((32, 3, 16, 16)).astype(np.float32))
    write_qdq(compiled.graph, tmp_path / "r_qdq.onnx")
    exported = onnx.load(tmp_path / "r_qdq.onnx")
    assert {"QuantizeLinear", "DequantizeLinear"} <= {n.op_type for n in exported.graph.node}
    test = rng.standard_normal((16, 1, 3, 16, 16)).astype(np.float32)
    lsb = lsb_vs_onnxruntime(compiled, exported, test)
    print(f"exported QDQ in onnxruntime vs C: {np.mean(lsb == 0) * 100:.2f} % exact, max {int(lsb.max())} LSB")
    assert np.mean(lsb <= 1) >= 0.99


def test_cli_export_qdq(tmp_path):
    import subprocess
    import sys

    from test_cli import small_model

    onnx.save(small_model(), tmp_path / "m.onnx")
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "mcucompile",
            "compile",
            str(tmp_path / "m.onnx"),
            "-o",
            str(tmp_path / "o"),
            "--export-qdq",
            str(tmp_path / "m_qdq.onnx"),
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    onnx.checker.check_model(onnx.load(tmp_path / "m_qdq.onnx"))


def test_dequantize_then_quantize_with_new_parameters_is_a_requantization():
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s1", "z1"], ["q1"]),
        helper.make_node("DequantizeLinear", ["q1", "s1", "z1"], ["d1"]),
        helper.make_node("QuantizeLinear", ["d1", "s2", "z2"], ["y"]),
    ]
    inits = {
        "s1": np.array(0.05, np.float32),
        "z1": np.array(-3, np.int8),
        "s2": np.array(0.0731, np.float32),
        "z2": np.array(10, np.int8),
    }
    model = make_model(nodes, {"x": (1, 200)}, [], inits)
    model.graph.output.append(helper.make_tensor_value_info("y", onnx.TensorProto.INT8, None))
    compiled = mcucompile.compile(model, name="rq")
    assert [c.kernel for c in compiled.program.calls] == ["mcu_requantize_s8"]
    x = np.random.default_rng(0).standard_normal((4, 1, 200)).astype(np.float32) * 4
    q_in = np.clip(np.rint(x / 0.05) - 3, -128, 127).astype(np.int8)
    with tempfile.TemporaryDirectory() as tmp:
        compiled.write(tmp)
        got = run_executable(Path(tmp), "rq", q_in.reshape(4, -1)).astype(np.int32)
    expected = ort_run(model, x).reshape(4, -1).astype(np.int32)
    assert np.abs(got - expected).max() <= 1 and np.mean(got == expected) >= 0.95


def test_onnxruntime_qdq_without_preprocessing_shares_initializers_through_identity(tmp_path):
    """quantize_static on a raw export (no quant_pre_process): equal BatchNorm parameters of two layers become one
    initializer read through Identity nodes, several copies of one tensor. Once refused as "a cycle"."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, 1, 1), nn.BatchNorm2d(8), nn.ReLU(), nn.Dropout(0.1),
                        nn.Conv2d(8, 8, 3, 1, 1), nn.BatchNorm2d(8), nn.ReLU()).eval()  # fmt: skip
    float_path, qdq_path = tmp_path / "float.onnx", tmp_path / "qdq.onnx"
    torch.onnx.export(net, torch.zeros(1, 3, 8, 8), float_path, input_names=["x"], dynamo=False,
                      do_constant_folding=False, opset_version=13)  # fmt: skip
    calib = np.random.default_rng(0).standard_normal((16, 1, 3, 8, 8)).astype(np.float32)
    quantize_static(str(float_path), str(qdq_path), _Reader(calib), quant_format=QuantFormat.QDQ, per_channel=True,
                    weight_type=QuantType.QInt8, activation_type=QuantType.QInt8)  # fmt: skip
    qdq = onnx.load(qdq_path)
    assert sum(n.op_type == "Identity" for n in qdq.graph.node) >= 2
    compiled = mcucompile.compile(qdq, name="m")
    test = np.random.default_rng(1).standard_normal((8, 1, 3, 8, 8)).astype(np.float32)
    # Without pre-processing the QDQ model rounds each Conv output before its float BatchNorm, which the compiler
    # folds into the Conv: compare with the float model, where both are int8 approximations.
    with tempfile.TemporaryDirectory() as tmp:
        compiled.write(tmp)
        c_model = CModel(tmp, "m")
        out = np.stack([c_model.run_f32(x) for x in test])
    assert accuracy(ort_run(onnx.load(float_path), test), out).sqnr_db >= 30
