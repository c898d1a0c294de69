"""ConvTranspose: C == int8 reference bit for bit (ASan/UBSan), float reference == onnxruntime, SQNR vs onnxruntime;
BatchNorm folding and activation fusion on PyTorch exports; an autoencoder; a QDQ model; refusals."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import helper
from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
from torch import nn

import mcucompile
from conftest import check_model, make_model
from mcucompile.verify import STRICT_CFLAGS
from test_passes import export, randomize_bn
from test_qdq import _Reader, lsb_vs_onnxruntime

RNG = np.random.default_rng(11)


def _w(*shape):
    return RNG.standard_normal(shape).astype(np.float32) * 0.5


CASES = {
    # name: (C_in, C_out, input HW, kernel, strides, other attributes)
    "s1_pads": (3, 4, (5, 6), (3, 3), (1, 1), dict(pads=[1, 1, 1, 1])),
    "s2": (3, 4, (4, 5), (3, 3), (2, 2), {}),
    "s3_pads_outpad": (2, 5, (3, 4), (3, 3), (3, 3), dict(pads=[1, 0, 2, 1], output_padding=[2, 1])),
    "dilation": (3, 4, (4, 5), (3, 2), (1, 2), dict(dilations=[2, 1], pads=[0, 1, 1, 0])),
    "output_shape": (3, 4, (4, 5), (3, 3), (2, 2), dict(output_shape=[8, 10])),
    "output_shape_outpad": (3, 4, (4, 5), (3, 3), (2, 2), dict(output_shape=[9, 11], output_padding=[1, 1])),
    "same_upper": (3, 4, (4, 5), (4, 4), (3, 3), dict(auto_pad="SAME_UPPER")),
    "same_lower": (3, 4, (4, 5), (4, 4), (3, 3), dict(auto_pad="SAME_LOWER")),
    "valid": (3, 4, (4, 5), (3, 3), (2, 2), dict(auto_pad="VALID")),
    # grouped: the ONNX weight is [C_IN, C_OUT / group, KH, KW]
    "group2": (4, 3, (4, 5), (3, 3), (2, 2), dict(group=2, pads=[1, 1, 0, 0])),
    "depthwise": (4, 1, (4, 5), (2, 2), (2, 2), dict(group=4)),
}


def _model(case, with_bias=True):
    cin, cout, hw, k, s, attrs = case
    inits = {"W": _w(cin, cout, *k)}
    if with_bias:
        inits["B"] = _w(cout * attrs.get("group", 1))
    inputs = ["x", "W", "B"] if with_bias else ["x", "W"]
    node = helper.make_node("ConvTranspose", inputs, ["y"], kernel_shape=list(k), strides=list(s), **attrs)
    return make_model([node], {"x": ("N", cin, *hw)}, ["y"], inits), (1, cin, *hw)


@pytest.mark.parametrize("name", list(CASES))
def test_conv_transpose(name):
    check_model(*_model(CASES[name]))


@pytest.mark.parametrize("name", ["s2", "output_shape", "same_lower", "group2"])
def test_conv_transpose_without_bias(name):
    check_model(*_model(CASES[name], with_bias=False))


def test_macs_count_the_taps_that_land_in_the_output():
    calib = RNG.standard_normal((4, 1, 3, 4, 5)).astype(np.float32)
    compiled = mcucompile.compile(_model(CASES["s2"])[0], name="m", calibration=calib)
    # no pads: every input pixel reaches all 9 taps
    assert compiled.stats.macs == 4 * 5 * 9 * 3 * 4


@pytest.mark.parametrize("opset", [13, 17])
@pytest.mark.parametrize("kind", ["k4s2p1", "k3s2p1op1"])
def test_pytorch_conv_transpose_bn_relu_fold_into_one_kernel(opset, kind):
    torch.manual_seed(0)
    layer = (
        nn.ConvTranspose2d(4, 6, 4, stride=2, padding=1)
        if kind == "k4s2p1"
        else nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1)
    )
    model = export(randomize_bn(nn.Sequential(layer, nn.BatchNorm2d(6), nn.ReLU())), (1, 4, 5, 6), opset=opset)
    assert [n.op_type for n in model.graph.node] == ["ConvTranspose", "BatchNormalization", "Relu"]
    compiled, _ = check_model(model, (1, 4, 5, 6))
    (node,) = compiled.float_graph.nodes
    assert node.op == "ConvTranspose" and node.attr("activation") == (0.0, float("inf"))
    assert compiled.graph.tensors[compiled.graph.outputs[0]].shape == (1, 6, 10, 12)


def test_autoencoder_with_sigmoid_output():
    torch.manual_seed(1)
    net = nn.Sequential(
        nn.Conv2d(1, 8, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 16, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.ConvTranspose2d(16, 8, 4, stride=2, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.ConvTranspose2d(8, 1, 3, stride=2, padding=1, output_padding=1),
        nn.Sigmoid(),
    )
    model = export(randomize_bn(net), (1, 1, 16, 16), opset=13)
    compiled, _ = check_model(model, (1, 1, 16, 16))
    ops = [n.op for n in compiled.float_graph.nodes]
    assert ops[:4] == ["Conv", "Conv", "ConvTranspose", "ConvTranspose"] and len(ops) == 5  # Sigmoid: a table
    with tempfile.TemporaryDirectory() as tmp:  # the generated C also passes the strict flags with clang
        compiled.write(tmp)
        r = subprocess.run(
            ["clang", *STRICT_CFLAGS, "-c", str(Path(tmp) / "m.c"), "-o", str(Path(tmp) / "m.o")],
            capture_output=True,
            text=True,
        )
        assert r.returncode == 0, r.stderr


def test_onnxruntime_qdq_model_keeps_its_axis_1_weight_scales(tmp_path):
    model, shape = _model(CASES["s3_pads_outpad"])
    onnx.save(model, tmp_path / "float.onnx")
    calib = RNG.standard_normal((16, *shape)).astype(np.float32)
    quantize_static(
        str(tmp_path / "float.onnx"),
        str(tmp_path / "qdq.onnx"),
        _Reader(calib),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        weight_type=QuantType.QInt8,
    )
    qdq = onnx.load(tmp_path / "qdq.onnx")
    compiled = mcucompile.compile(qdq, name="m")
    w = next(t for n, t in compiled.graph.tensors.items() if n.endswith("::weight_q"))
    assert w.quant.axis == 1 and w.quant.scale.shape == (5,)
    assert lsb_vs_onnxruntime(compiled, qdq, RNG.standard_normal((8, *shape)).astype(np.float32)).max() <= 1


@pytest.mark.parametrize(
    "attrs,weight,reason",
    [
        (dict(auto_pad="SAME_UPPER", strides=[2, 2]), (4, 3, 1, 1), "negative padding"),
    ],
)
def test_unsupported_attributes_are_refused_with_a_reason(attrs, weight, reason):
    node = helper.make_node("ConvTranspose", ["x", "W"], ["y"], **attrs)
    model = make_model([node], {"x": (1, 4, 4, 5)}, ["y"], {"W": _w(*weight)})
    with pytest.raises(mcucompile.CompileError, match=reason):
        mcucompile.compile(model, name="m", calibration=RNG.standard_normal((4, 1, 4, 4, 5)).astype(np.float32))


def test_onnxruntime_qdq_grouped_model_repeats_its_scales_per_group(tmp_path):
    model, shape = _model(CASES["group2"], with_bias=False)  # onnxruntime's quantizer fails on a grouped bias
    onnx.save(model, tmp_path / "float.onnx")
    calib = RNG.standard_normal((16, *shape)).astype(np.float32)
    quantize_static(str(tmp_path / "float.onnx"), str(tmp_path / "qdq.onnx"), _Reader(calib),
                    quant_format=QuantFormat.QDQ, per_channel=True, weight_type=QuantType.QInt8)  # fmt: skip
    qdq = onnx.load(tmp_path / "qdq.onnx")
    compiled = mcucompile.compile(qdq, name="m")
    assert lsb_vs_onnxruntime(compiled, qdq, RNG.standard_normal((8, *shape)).astype(np.float32)).max() <= 1
