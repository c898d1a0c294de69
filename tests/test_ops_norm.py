"""InstanceNormalization and GroupNormalization (the op, opset 18 and 21, and PyTorch's GroupNorm export as
Reshape -> InstanceNormalization -> Reshape -> Mul -> Add), 1-D and 2-D: C == int8 reference bit for bit
(sanitizers), float reference == onnxruntime, int8 SQNR vs onnxruntime; each is one mcu_norm_s8 call."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

import mcucompile
from conftest import check_model, make_model
from layers import LAYERS, export

NORMS = ["instancenorm1d", "instancenorm2d", "instancenorm2d_plain", "groupnorm1d", "groupnorm2d",
         "groupnorm2d_one_group"]  # fmt: skip


@pytest.mark.parametrize("name", NORMS)
@pytest.mark.parametrize("opset,dynamo", [(13, False), (17, False), (18, True), (21, True)])
def test_pytorch_norm_is_one_kernel(name, opset, dynamo):
    compiled, _ = check_model(export(name, opset, dynamo), LAYERS[name].shape, min_sqnr=30.0, n_test=8)
    kernels = [c.kernel for c in compiled.program.calls]
    assert kernels.count("mcu_norm_s8") == 1 and "mcu_mul_s8" not in kernels and "mcu_add_s8" not in kernels, kernels


@pytest.mark.parametrize("opset,scale_size", [(18, 2), (21, 6)])
def test_group_normalization_op_per_group_and_per_channel_scales(opset, scale_size):
    rng = np.random.default_rng(opset)
    node = helper.make_node("GroupNormalization", ["x", "s", "b"], ["y"], num_groups=2, epsilon=1e-3)
    inits = {"s": rng.uniform(0.5, 1.5, scale_size).astype(np.float32),
             "b": rng.uniform(-0.5, 0.5, scale_size).astype(np.float32)}  # fmt: skip
    model = make_model([node], {"x": (1, 6, 5, 4)}, ["y"], inits, opset=opset)
    check_model(model, (1, 6, 5, 4), min_sqnr=30.0)


def test_norm_of_a_constant_group_is_its_bias():
    """A group whose values are all equal has variance 0: the output is beta (epsilon keeps it finite)."""
    node = helper.make_node("InstanceNormalization", ["x", "s", "b"], ["y"], epsilon=1e-5)
    inits = {"s": np.array([2.0, 3.0], np.float32), "b": np.array([0.25, -0.5], np.float32)}
    model = make_model([node, helper.make_node("Relu", ["y"], ["z"])], {"x": (1, 2, 3, 3)}, ["z"], inits)
    x = np.zeros((4, 1, 2, 3, 3), np.float32)
    x[:, :, 0] = np.linspace(-1, 1, 9).reshape(3, 3)  # channel 0 varies, channel 1 is constant
    compiled = mcucompile.compile(model, calibration=x)
    assert [c.kernel for c in compiled.program.calls] == ["mcu_transpose_s8", "mcu_norm_s8", "mcu_transpose_s8"]
    out = compiled.verify(x)
    assert out.max_lsb_vs_reference == 0 and out.vs_onnxruntime.sqnr_db > 30


def test_group_count_that_does_not_divide_the_channels_is_refused():
    node = helper.make_node("GroupNormalization", ["x", "s", "b"], ["y"], num_groups=4)
    inits = {"s": np.ones(4, np.float32), "b": np.zeros(4, np.float32)}
    model = make_model([node], {"x": (1, 6, 2, 2)}, ["y"], inits, opset=18)
    with pytest.raises(mcucompile.CompileError, match="num_groups=4 does not divide the 6 channels"):
        mcucompile.compile(model, calibration=np.zeros((1, 1, 6, 2, 2), np.float32))
