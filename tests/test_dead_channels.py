"""Dead-channel elimination: models pruned with masks (zero filters left in place) lose exactly the channels the
masks make removable, and keep onnxruntime's float output.

Each test zeroes filters the way structured pruning does, sets the constant the channel then holds (through the
bias, or BatchNorm's beta) and states which channels must go. The expected channels, parameters, MACs and bytes
are computed here from those masks and the layer shapes, never taken from the pass. check_model then compares
the float graph after the passes with onnxruntime on the original model (1e-4), the C (gcc, sanitizers) with the
int8 reference bit for bit, and the C with onnxruntime (SQNR).
"""

from __future__ import annotations

import io
import tempfile
from contextlib import redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
from torch import nn

import mcucompile
from conftest import assert_bit_exact, check_model
from mcucompile import passes
from mcucompile.cli import main
from mcucompile.passes.dead_channels import eliminate_dead_channels
from mcucompile.simulate import run_float
from mcucompile.verify import run_executable
from test_passes import export, float_pipeline, randomize_bn
from test_qdq import _Reader, lsb_vs_onnxruntime


def zero_filters(conv: nn.Module, constants: dict[int, float], bn: nn.BatchNorm2d | None = None) -> None:
    """Prune output channels of `conv` as a mask does: their filters become zero and each channel then holds its
    constant before the activation (set through the conv's bias, or through BN's beta after a bias-free conv)."""
    channels = list(constants)
    values = torch.tensor(list(constants.values()))
    with torch.no_grad():
        if isinstance(conv, nn.ConvTranspose2d):
            conv.weight[:, channels] = 0
        else:
            conv.weight[channels] = 0
        if bn is None:
            conv.bias[channels] = values
        else:
            bn.running_mean[channels] = 0.0
            bn.bias[channels] = values


@dataclass(frozen=True)
class Layer:
    """A weighted layer as the masks leave it: `out` output channels go (filters and biases), `inp` input
    channels go (their weights in every filter). c_in is per group (1 for a depthwise layer); pixels: output
    pixels (input pixels for a ConvTranspose, whose every tap lands in the output here)."""

    c_in: int
    c_out: int
    taps: int
    pixels: int
    out: int = 0
    inp: int = 0

    @property
    def weights_removed(self) -> int:
        return self.c_out * self.c_in * self.taps - (self.c_out - self.out) * (self.c_in - self.inp) * self.taps


def expect_removed(compiled, layers: list[Layer]) -> None:
    report = compiled.pruning
    channels = [(r.channels_before, r.channels_after) for r in report.layers]
    assert channels == [(L.c_out, L.c_out - L.out) for L in layers]
    assert report.channels_removed == sum(L.out for L in layers)
    assert report.params_removed == sum(L.weights_removed + L.out for L in layers)
    assert report.macs_removed == sum(L.weights_removed * L.pixels for L in layers)
    assert report.bytes_removed == sum(L.weights_removed + 4 * L.out for L in layers)
    dense = sum(L.c_out * L.c_in * L.taps + L.c_out for L in layers)
    assert compiled.stats.params + report.params_removed == dense  # the C's arrays + what was removed


def calibration(shape) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((8, *shape)).astype(np.float32)


def test_conv_bn_relu_then_1x1_folds_the_constants_and_removes_the_channels():
    torch.manual_seed(0)
    net = randomize_bn(nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
                                     nn.Conv2d(8, 6, 1)))
    zero_filters(net[0], {1: 0.7, 4: -0.3, 6: 0.2}, net[1])  # relu(-0.3) = 0: a zero constant too
    model = export(net, (1, 3, 8, 8))
    compiled, _ = check_model(model, (1, 3, 8, 8))
    expect_removed(compiled, [Layer(3, 8, 9, 64, out=3), Layer(8, 6, 1, 64, inp=3)])
    assert "pruned     3 dead output channels" in compiled.summary()


@pytest.mark.parametrize(
    "padding, constant, removed",
    [(1, 0.5, 0), (1, 0.0, 2), (0, 0.5, 2)],
    ids=["padded-nonzero-kept", "padded-zero-removed", "valid-nonzero-removed"],
)
def test_3x3_consumer_folds_a_constant_only_where_exact(padding, constant, removed):
    """A padded 3x3 conv reads the constant inside the image and 0 in the padding: not foldable unless c == 0.
    Without padding every tap reads the constant."""
    torch.manual_seed(1)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 4, 3, padding=padding))
    zero_filters(net[0], {2: constant, 5: constant})
    model = export(net, (1, 3, 6, 6))
    compiled, _ = check_model(model, (1, 3, 6, 6))
    pixels = (6 - 2 + 2 * padding) ** 2
    expect_removed(compiled, [Layer(3, 8, 9, 36, out=removed), Layer(8, 4, 9, pixels, inp=removed)])


def test_a_layer_with_every_filter_zero_keeps_one_channel():
    torch.manual_seed(12)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 3, 1))
    zero_filters(net[0], {0: 0.1, 1: 0.2, 2: 0.0, 3: 0.3})
    compiled, _ = check_model(export(net, (1, 3, 5, 5)), (1, 3, 5, 5), min_sqnr=20.0)
    expect_removed(compiled, [Layer(3, 4, 9, 25, out=3), Layer(4, 3, 1, 25, inp=3)])


@pytest.mark.parametrize("padding, removed", [(1, 3), (0, 4)], ids=["padded", "valid"])
def test_depthwise_chain(padding, removed):
    """1x1 -> BN -> ReLU6 -> depthwise 3x3 -> BN -> ReLU -> 1x1. Channels 2 and 5 are pruned in both the 1x1 and
    the depthwise layer (the depthwise output is constant whatever it reads); channel 0 holds relu6(-0.5) = 0,
    so the depthwise output is constant even with padding; channel 7 holds 0.5, constant after the depthwise
    only without padding."""
    torch.manual_seed(2)
    net = randomize_bn(nn.Sequential(
        nn.Conv2d(4, 8, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU6(),
        nn.Conv2d(8, 8, 3, padding=padding, groups=8, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 6, 1),
    ))
    zero_filters(net[0], {0: -0.5, 2: 0.4, 5: 0.9, 7: 0.5}, net[1])
    zero_filters(net[3], {2: 0.3, 5: -0.2}, net[4])
    model = export(net, (1, 4, 7, 7))
    compiled, _ = check_model(model, (1, 4, 7, 7))
    hw = (7 - 2 + 2 * padding) ** 2
    expect_removed(compiled, [Layer(4, 8, 1, 49, out=removed), Layer(1, 8, 9, hw, out=removed),
                              Layer(8, 6, 1, hw, inp=removed)])


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU())
        self.a = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU())
        self.b = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8))
        self.head = nn.Conv2d(8, 4, 1)

    def forward(self, x):
        x = self.stem(x)
        return self.head(torch.relu(x + self.b(self.a(x))))


def test_residual_add_removes_a_channel_only_where_both_branches_are_dead():
    """Channel 3: dead in both operands, and the stem's 0 is foldable in the padded conv a -> removed.
    Channel 5: dead in branch b only -> kept. Channel 6: dead in both, but the stem's 0.4 feeds conv a (padded)
    -> kept, and with it the whole Add channel."""
    torch.manual_seed(3)
    net = randomize_bn(Residual())
    zero_filters(net.stem[0], {3: -0.5, 6: 0.4}, net.stem[1])
    zero_filters(net.b[0], {3: 0.6, 5: 0.2, 6: 0.1}, net.b[1])
    model = export(net, (1, 3, 6, 6))
    compiled, _ = check_model(model, (1, 3, 6, 6))
    expect_removed(compiled, [Layer(3, 8, 9, 36, out=1), Layer(8, 8, 9, 36, inp=1), Layer(8, 8, 9, 36, out=1),
                              Layer(8, 4, 1, 36, inp=1)])
    add = next(n for n in compiled.float_graph.nodes if n.op == "Add")
    assert compiled.float_graph.tensors[add.outputs[0]].shape[1] == 7


class Branches(nn.Module):
    """Two branches concatenated (then a 1x1), or one conv cut in two halves (then added): torch.chunk exports
    Slices, torch.split a Split."""

    def __init__(self, join: str):
        super().__init__()
        self.join = join
        self.p = nn.Sequential(nn.Conv2d(3, 4, 1), nn.ReLU())
        self.q = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU())
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 1), nn.ReLU())
        self.head = nn.Conv2d(8, 5, 1)
        self.u, self.v = nn.Conv2d(4, 3, 1), nn.Conv2d(4, 3, 1)

    def forward(self, x):
        if self.join == "concat":
            return self.head(torch.cat([self.p(x), self.q(x)], dim=1))
        y = self.stem(x)
        left, right = torch.chunk(y, 2, dim=1) if self.join == "chunk" else torch.split(y, [4, 4], dim=1)
        return self.u(left) + self.v(right)


def test_concat_removes_the_channels_at_their_offsets():
    torch.manual_seed(4)
    net = Branches("concat")
    zero_filters(net.p[0], {1: 0.3})
    zero_filters(net.q[0], {2: 0.0, 3: 0.7})  # 0.0 and 0.7 read by a 1x1: both foldable
    model = export(net, (1, 3, 5, 5))
    compiled, _ = check_model(model, (1, 3, 5, 5))
    expect_removed(compiled, [Layer(3, 4, 1, 25, out=1), Layer(3, 4, 9, 25, out=2), Layer(8, 5, 1, 25, inp=3)])


@pytest.mark.parametrize("join, op", [("chunk", "Slice"), ("split", "Split")])
def test_slice_and_split_get_their_new_bounds(join, op):
    torch.manual_seed(5)
    net = Branches(join)
    zero_filters(net.stem[0], {1: 0.3, 2: 0.2, 6: 0.5})  # two in the left half, one in the right
    model = export(net, (1, 3, 5, 5))
    compiled, _ = check_model(model, (1, 3, 5, 5))
    expect_removed(compiled, [Layer(3, 8, 1, 25, out=3), Layer(4, 3, 1, 25, inp=2), Layer(4, 3, 1, 25, inp=1)])
    g = compiled.float_graph
    assert [g.tensors[t].shape[1] for n in g.nodes if n.op == op for t in n.outputs] == [2, 3]


@pytest.mark.parametrize("pool", [True, False], ids=["global-avg-pool", "flatten-4x4"])
def test_gemm_folds_the_constants_after_global_pooling_or_flatten(pool):
    """GAP of a constant channel is that constant; a flattened 4x4 channel is 16 constant features."""
    torch.manual_seed(6)
    conv = nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False)
    bn = nn.BatchNorm2d(8)
    reduce = [nn.AdaptiveAvgPool2d(1), nn.Flatten()] if pool else [nn.Flatten()]
    features = 8 if pool else 8 * 16
    net = randomize_bn(nn.Sequential(conv, bn, nn.ReLU(), *reduce, nn.Linear(features, 5)))
    zero_filters(conv, {0: 0.25, 3: 0.8}, bn)
    model = export(net, (1, 3, 8, 8))
    compiled, _ = check_model(model, (1, 3, 8, 8))
    per_channel = 1 if pool else 16
    expect_removed(compiled, [Layer(3, 8, 9, 16, out=2), Layer(features, 5, 1, 1, inp=2 * per_channel)])


def test_conv_transpose_output_and_input_channels():
    """A ConvTranspose folds nothing (taps land unevenly at the border), so it drops only a zero input constant;
    its own zero filter's constant folds into the 1x1 after it."""
    torch.manual_seed(7)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.ConvTranspose2d(8, 6, 2, stride=2),
                        nn.Conv2d(6, 4, 1))
    zero_filters(net[0], {2: -0.4, 5: 0.3})  # relu: 0 (removed) and 0.3 (kept)
    zero_filters(net[2], {1: 0.2})
    model = export(net, (1, 3, 4, 4))
    compiled, _ = check_model(model, (1, 3, 4, 4))
    expect_removed(compiled, [Layer(3, 8, 9, 16, out=1), Layer(8, 6, 4, 16, out=1, inp=1), Layer(6, 4, 1, 64, inp=1)])


def test_qdq_model_slices_per_channel_scales(tmp_path):
    """onnxruntime's per-channel QDQ quantization of a pruned model: the kept channels keep their own weight
    scales, the C is exact against the int8 reference and within 1 LSB of onnxruntime on the QDQ model."""
    torch.manual_seed(8)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.ReLU(), nn.Conv2d(8, 16, 1), nn.ReLU(),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))
    zero_filters(net[0], {1: 0.5, 5: 0.3})
    zero_filters(net[2], {3: 0.2, 9: -0.1, 12: 0.4})
    onnx.save(export(net, (1, 3, 16, 16)), tmp_path / "float.onnx")
    rng = np.random.default_rng(0)
    quantize_static(
        str(tmp_path / "float.onnx"),
        str(tmp_path / "qdq.onnx"),
        _Reader(rng.standard_normal((32, 1, 3, 16, 16)).astype(np.float32)),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QInt8,
        weight_type=QuantType.QInt8,
    )
    qdq = onnx.load(tmp_path / "qdq.onnx")
    compiled = mcucompile.compile(qdq, name="q")
    expect_removed(compiled, [Layer(3, 8, 9, 64, out=2), Layer(8, 16, 1, 64, out=3, inp=2),
                              Layer(16, 10, 1, 1, inp=3)])

    scales = {i.name: onnx.numpy_helper.to_array(i) for i in qdq.graph.initializer if i.name.endswith("weight_scale")}
    kept = {"0.weight_scale": np.delete(np.arange(8), [1, 5]), "2.weight_scale": np.delete(np.arange(16), [3, 9, 12])}
    convs = [n for n in compiled.graph.nodes if n.op == "Conv"]
    for node, (name, channels) in zip(convs, kept.items()):
        np.testing.assert_array_equal(compiled.graph.tensors[node.inputs[1]].quant.scale, scales[name][channels])

    test = rng.standard_normal((32, 1, 3, 16, 16)).astype(np.float32)
    q_in = np.stack([compiled.quantize_input(x) for x in test])
    with tempfile.TemporaryDirectory() as tmp:
        compiled.write(tmp)
        got = run_executable(Path(tmp), "q", q_in.reshape(len(test), -1))
    assert_bit_exact(got, compiled.run_reference(q_in).reshape(len(test), -1))
    lsb = lsb_vs_onnxruntime(compiled, qdq, test)
    assert np.mean(lsb <= 1) >= 0.99, f"max {lsb.max()} LSB"


def test_a_model_without_zero_filters_is_unchanged():
    torch.manual_seed(9)
    net = randomize_bn(nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                                     nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.ReLU(), nn.Conv2d(8, 4, 1)))
    g0, _ = float_pipeline(export(net, (1, 3, 6, 6)))
    g = passes.run_passes(g0, passes.FLOAT_PIPELINE[:-1])
    assert eliminate_dead_channels(g) is g
    compiled = mcucompile.compile(export(net, (1, 3, 6, 6)), calibration=calibration((1, 3, 6, 6)))
    assert compiled.pruning.params_removed == 0 and compiled.pruning.channels_removed == 0
    assert "pruned" not in compiled.summary() and "sparsity" not in compiled.summary()


class TwoOutputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.head = nn.Conv2d(3, 6, 3, padding=1), nn.Conv2d(6, 2, 1)

    def forward(self, x):
        y = torch.relu(self.conv(x))
        return y, self.head(y)


def test_graph_outputs_keep_every_channel():
    """The dead channels are in a graph output (which also feeds a 1x1 that could fold them): nothing goes."""
    torch.manual_seed(10)
    net = TwoOutputs()
    zero_filters(net.conv, {0: 0.5, 4: 0.0})
    buf = io.BytesIO()
    torch.onnx.export(net.eval(), torch.randn(1, 3, 5, 5), buf, opset_version=13, dynamo=False,
                      input_names=["x"], output_names=["y", "z"])
    model = onnx.load_from_string(buf.getvalue())
    _, g = float_pipeline(model)
    assert [g.tensors[t].shape for t in g.outputs] == [(1, 6, 5, 5), (1, 2, 5, 5)]
    assert [g.const(n.inputs[1]).shape[:2] for n in g.nodes] == [(6, 3), (2, 6)]
    xs = calibration((1, 3, 5, 5))
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    for x in xs:
        ours = run_float(g, {"x": x})
        for name, theirs in zip(g.outputs, sess.run(None, {"x": x})):
            np.testing.assert_allclose(ours[name], theirs, rtol=1e-4, atol=1e-4)
    assert mcucompile.compile(model, calibration=xs).pruning.params_removed == 0


def test_sparsity_is_reported_and_the_cli_prints_it(tmp_path):
    """Unstructured pruning (scattered zeros) removes nothing, but the summary says how sparse the weights are."""
    torch.manual_seed(11)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 4, 1))
    with torch.no_grad():
        net[0].weight[torch.rand(net[0].weight.shape) < 0.5] = 0  # about half, never a whole filter of 27
        net[0].weight[:, :, 1, 1] = 0.1
    zeros = int((net[0].weight == 0).sum())
    onnx.save(export(net, (1, 3, 6, 6)), tmp_path / "m.onnx")
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["compile", str(tmp_path / "m.onnx"), "-o", str(tmp_path / "build")]) == 0
    compiled = mcucompile.compile(tmp_path / "m.onnx", calibration=calibration((1, 3, 6, 6)))
    first = compiled.pruning.layers[0]
    assert compiled.pruning.channels_removed == 0
    assert first.zero_fraction == pytest.approx(zeros / 216)
    assert f"sparsity   {zeros / (216 + 32) * 100:.1f} % of the weights are zero" in out.getvalue()
