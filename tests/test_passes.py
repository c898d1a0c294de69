"""Passes keep onnxruntime's float output (numeric) and produce the expected op list (structural).

Models come from PyTorch with do_constant_folding=False, so the exporter leaves BatchNormalization nodes in.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from conftest import ort_run
from mcucompile import onnx_import, passes
from mcucompile.simulate import run_float


def export(model: nn.Module, shape, opset=13, dynamic_batch=False) -> onnx.ModelProto:
    model.eval()
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            torch.randn(*shape),
            buf,
            opset_version=opset,
            do_constant_folding=False,
            dynamo=False,
            input_names=["x"],
            output_names=["y"],
            dynamic_axes={"x": {0: "N"}, "y": {0: "N"}} if dynamic_batch else None,
        )
    return onnx.load_from_string(buf.getvalue())


def randomize_bn(model: nn.Module, seed=0) -> nn.Module:
    """Non-trivial BatchNorm statistics, so folding is really exercised."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.5)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=g) * 0.2)
    return model


def float_pipeline(model: onnx.ModelProto):
    g0 = onnx_import.import_onnx(model)
    return g0, passes.run_passes(g0, passes.FLOAT_PIPELINE)


def compare(model: onnx.ModelProto, g, shape, n=4):
    xs = np.random.default_rng(0).standard_normal((n, *shape)).astype(np.float32)
    ours = np.stack([run_float(g, {g.inputs[0]: x})[g.outputs[0]] for x in xs])
    np.testing.assert_allclose(ours, ort_run(model, xs), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("opset", [13, 17])
def test_conv_bn_relu6_folds_into_one_conv(opset):
    torch.manual_seed(0)
    net = randomize_bn(
        nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1, bias=False),
            nn.BatchNorm2d(8),
            nn.ReLU6(),
            nn.Conv2d(8, 8, 3, groups=8, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(),
        )
    )
    model = export(net, (1, 3, 10, 10), opset)
    g0, g = float_pipeline(model)
    assert [n.op for n in g0.nodes].count("BatchNormalization") == 2
    assert [n.op for n in g.nodes] == ["Conv", "Conv"]
    assert g.nodes[0].attr("activation") == (0.0, 6.0)
    assert g.nodes[1].attr("activation")[0] == 0.0
    compare(model, g, (1, 3, 10, 10))


def test_linear_bn1d_folds_into_gemm():
    torch.manual_seed(1)
    net = randomize_bn(nn.Sequential(nn.Linear(12, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 3)))
    model = export(net, (1, 12))
    g0, g = float_pipeline(model)
    assert "BatchNormalization" in [n.op for n in g0.nodes]
    assert [n.op for n in g.nodes] == ["Gemm", "Gemm"]
    compare(model, g, (1, 12))


def test_bn_after_pool_becomes_depthwise_conv_and_relu_stays_standalone():
    torch.manual_seed(2)
    net = randomize_bn(nn.Sequential(nn.Conv2d(2, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.BatchNorm2d(4), nn.ReLU()))
    model = export(net, (1, 2, 9, 9))
    _, g = float_pipeline(model)
    assert [n.op for n in g.nodes] == ["Conv", "MaxPool", "Conv"]
    assert g.nodes[2].attr("group") == 4 and g.nodes[2].attr("activation")[0] == 0.0
    compare(model, g, (1, 2, 9, 9))


def test_shape_arithmetic_is_folded_into_a_constant_reshape():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)
            self.fc = nn.Linear(4 * 6 * 6, 5)

        def forward(self, x):
            y = self.conv(x)
            return self.fc(y.reshape(y.shape[0], -1))  # exports Shape -> Gather -> Unsqueeze -> Concat -> Reshape

    model = export(Net(), (1, 3, 8, 8), dynamic_batch=True)
    assert "Shape" in [n.op_type for n in model.graph.node]
    g0, g = float_pipeline(model)
    assert not {"Shape", "Gather", "Concat", "Unsqueeze"} & {n.op for n in g0.nodes}
    assert [n.op for n in g.nodes] == ["Conv", "Reshape", "Gemm"]
    compare(model, g, (1, 3, 8, 8))


def test_identity_and_dropout_are_removed():
    net = nn.Sequential(nn.Linear(5, 5), nn.Dropout(0.5), nn.Identity(), nn.Linear(5, 2))
    model = export(net, (1, 5))
    _, g = float_pipeline(model)
    assert [n.op for n in g.nodes] == ["Gemm", "Gemm"]
    compare(model, g, (1, 5))
