"""End to end: networks compiled to C (built with sanitizers), against onnxruntime on the float model."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

import mcucompile
from conftest import assert_bit_exact, ort_run
from mcucompile.verify import CModel, accuracy, run_executable
from test_passes import export, randomize_bn

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "digits"


def conv_bn(cin, cout, k=3, stride=1, groups=1, act=True):
    layers = [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    return nn.Sequential(*layers, nn.ReLU6()) if act else nn.Sequential(*layers)


class MobileNetBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            conv_bn(3, 16, stride=2),
            conv_bn(16, 16, groups=16),
            conv_bn(16, 32, k=1),
            conv_bn(32, 32, stride=2, groups=32),
            conv_bn(32, 32, k=1),
        )
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(self.body(x), 1), 1))


class ResNetBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = conv_bn(3, 16)
        self.a = conv_bn(16, 16)
        self.b = conv_bn(16, 16, act=False)
        self.down = nn.Sequential(nn.Conv2d(16, 32, 1, 2, bias=False), nn.BatchNorm2d(32))
        self.c = conv_bn(16, 32, stride=2)
        self.d = conv_bn(32, 32, act=False)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(32 * 4 * 4, 10)

    def forward(self, x):
        x = self.stem(x)
        x = torch.relu(x + self.b(self.a(x)))  # residual Add with a fused ReLU
        x = torch.relu(self.down(x) + self.d(self.c(x)))
        return self.fc(torch.flatten(self.pool(x), 1))


def check_network(net: nn.Module, shape, name: str, min_sqnr: float):
    torch.manual_seed(0)
    model = export(randomize_bn(net), shape)
    rng = np.random.default_rng(0)
    calib = rng.standard_normal((64, *shape[1:])).astype(np.float32)
    test = rng.standard_normal((32, *shape[1:])).astype(np.float32)
    compiled = mcucompile.compile(model, name=name, calibration=calib)
    with tempfile.TemporaryDirectory() as tmp:
        compiled.write(tmp)
        c_model = CModel(tmp, name)
        c_out = np.stack([c_model.run_f32(x) for x in test])
        q_in = np.stack([compiled.quantize_input(x[None]) for x in test])
        sanitized = run_executable(Path(tmp), name, q_in.reshape(len(test), -1))
    assert_bit_exact(sanitized, compiled.run_reference(q_in).reshape(len(test), -1))
    acc = accuracy(ort_run(model, test[:, None]), c_out)
    assert acc.sqnr_db >= min_sqnr, str(acc)
    return compiled, acc


def test_mobilenet_style_block_sqnr():
    _, acc = check_network(MobileNetBlock(), (1, 3, 32, 32), "mbnet", 30.0)
    print(acc)


def test_resnet_style_block_with_residual_add_sqnr():
    compiled, acc = check_network(ResNetBlock(), (1, 3, 16, 16), "resnet", 30.0)
    assert [n.op for n in compiled.float_graph.nodes].count("Add") == 2
    print(acc)


def test_digits_dscnn_int8_c_keeps_float_accuracy():
    """The bundled example (examples/make_digits.py): int8 C within 1 point of the float model in onnxruntime."""
    model = onnx.load(EXAMPLES / "digits_dscnn.onnx")
    assert "BatchNormalization" in {n.op_type for n in model.graph.node}
    test = np.load(EXAMPLES / "digits_test.npz")
    x, y = test["x"], test["y"]
    compiled = mcucompile.compile(model, name="digits", calibration=EXAMPLES / "digits_calib.npy")
    with tempfile.TemporaryDirectory() as tmp:
        compiled.write(tmp)
        c_model = CModel(tmp, "digits")
        c_logits = np.stack([c_model.run_f32(s) for s in x])
    float_logits = ort_run(model, x[:, None])
    float_acc = float(np.mean(float_logits.reshape(len(y), -1).argmax(1) == y))
    c_acc = float(np.mean(c_logits.argmax(1) == y))
    print(f"digits: float {float_acc:.4f}, int8 C {c_acc:.4f}, {compiled.summary()}")
    assert float_acc >= 0.95
    assert c_acc >= float_acc - 0.01
