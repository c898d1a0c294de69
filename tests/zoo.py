"""A zoo of compact (MCU-sized) PyTorch networks, one per architecture family, exported to ONNX.

    from zoo import FAMILIES, export
    model = export("mobilenet_v2", opset=13, size=32)   # onnx.ModelProto, input "x", output "y"

Each family keeps the op pattern that defines it (depthwise-separable convs, inverted residuals, squeeze-
excitation gating, fire-module Concat, channel split + shuffle, ...) at small widths. Classifiers end in
global average pool + Linear(10). Weights are random but deterministic; BatchNorm statistics are set from
a batch of random inputs and then perturbed at random (running_mean, running_var, weight, bias), so the
folded Conv weights differ from the raw ones and the activations stay input-dependent and well scaled
(random init alone lets deep stacks collapse to a constant, which would make accuracy checks vacuous).
"""

from __future__ import annotations

import io
import warnings

import numpy as np
import onnx
import torch
from torch import nn

from zoo_blocks import NUM_CLASSES, Family  # noqa: F401 - part of the zoo's interface
from zoo_breadth import BREADTH_FAMILIES
from zoo_cnn import CNN_FAMILIES

OPSETS = (13, 17)
DYNAMO_OPSET = 18  # the torch.export-based exporter's default
FAMILIES: dict[str, Family] = {**CNN_FAMILIES, **BREADTH_FAMILIES}


# ----------------------------------------------------------------------------------------- weights and export


def _seed_of(family: str) -> int:
    return sum(ord(c) * 31**i for i, c in enumerate(family)) % (2**31)


def samples(family: str, size, n: int, seed: int):
    """`n` standard-normal inputs of `family` at `size`: (n, *input shape) float32."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, *input_shape(family, size))).astype(np.float32)


@torch.no_grad()
def randomize(net: nn.Module, family: str, size, seed: int) -> nn.Module:
    """Deterministic random weights and data-dependent, then perturbed, BatchNorm statistics.

    Convs and Linears get He-normal weights and small random biases. Each BatchNorm first records the
    statistics of 8 standard-normal inputs (one train-mode pass, momentum 1), then all four of its parameters
    are perturbed: running_mean shifted by 0.2 std, running_var scaled by 0.6..1.6, weight 0.5..1.5, bias
    +-0.2. Folding them is therefore far from the identity, and no layer collapses to a constant or saturates
    (purely random statistics on default-initialised weights make deep stacks output a constant).
    """
    g = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.Linear)):
            transposed = isinstance(m, (nn.ConvTranspose1d, nn.ConvTranspose2d))
            fan_in = m.weight[:, 0].numel() if transposed else m.weight[0].numel()
            m.weight.copy_(torch.randn(m.weight.shape, generator=g) * (2.0 / fan_in) ** 0.5)
            if m.bias is not None:
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
        if isinstance(m, (nn.GroupNorm, nn.InstanceNorm1d, nn.InstanceNorm2d)) and m.weight is not None:
            m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)  # normalised per sample: no statistics
            m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.2)
    bns = [m for m in net.modules() if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d))]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = 1.0
    net.train()
    net(torch.randn(8, *input_shape(family, size)[1:], generator=g))
    net.eval()
    for bn in bns:
        n = bn.num_features
        bn.running_mean.add_(torch.randn(n, generator=g) * 0.2 * bn.running_var.sqrt())
        bn.running_var.mul_(torch.rand(n, generator=g) + 0.6)
        bn.weight.copy_(torch.rand(n, generator=g) + 0.5)
        bn.bias.copy_(torch.randn(n, generator=g) * 0.2)
        bn.momentum = 0.1
    return net


def build(family: str, size) -> tuple[nn.Module, tuple]:
    """The eval-mode network of `family` (deterministic weights) and its input shape for `size`."""
    fam = FAMILIES[family]
    shape = fam.shapes[size]
    torch.manual_seed(_seed_of(family))
    net = fam.build()
    return randomize(net, family, size, _seed_of(family)).eval(), shape


def export(family: str, opset: int, size, dynamo: bool = False) -> onnx.ModelProto:
    """torch.onnx.export of `family` at `opset` for input `size`: the TorchScript exporter (dynamo=False, constant
    folding off so BatchNormalization nodes stay in the graph for the compiler to fold), or the default
    torch.export-based one."""
    net, shape = build(family, size)
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            program = torch.onnx.export(net, (torch.zeros(shape),), dynamo=True, opset_version=opset, verbose=False,
                                        input_names=["x"], output_names=["y"])  # fmt: skip
            return onnx.load_from_string(program.model_proto.SerializeToString())
        torch.onnx.export(
            net,
            torch.zeros(shape),
            buf,
            opset_version=opset,
            do_constant_folding=False,
            dynamo=False,
            input_names=["x"],
            output_names=["y"],
        )
    return onnx.load_from_string(buf.getvalue())


def input_shape(family: str, size) -> tuple:
    return FAMILIES[family].shapes[size]


def sizes(family: str) -> list:
    return list(FAMILIES[family].shapes)


def ort_quantize(model: onnx.ModelProto, calib: np.ndarray) -> bytes:
    """onnxruntime's own static quantizer on `model`: quant_pre_process, then quantize_static with QDQ,
    per-channel weights, MinMax calibration, int8 activations and weights.

    `calib` holds the calibration samples (N x input shape); returns the serialized QDQ model.
    """
    import tempfile
    from pathlib import Path

    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.items = iter([{model.graph.input[0].name: np.asarray(x, np.float32)} for x in calib])

        def get_next(self):
            return next(self.items, None)

    with tempfile.TemporaryDirectory(prefix="zoo_ort_") as tmp:
        src, pre, dst = (Path(tmp) / f for f in ("float.onnx", "preprocessed.onnx", "qdq.onnx"))
        onnx.save(model, src)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # onnxruntime's documented first step: shape inference and graph optimization (folds constants and
            # BatchNorm). Without it, quantize_static also quantizes the constant `scales` of Resize (computed by
            # a Concat in the exported graph), and the quantized model then fails in onnxruntime.
            quant_pre_process(str(src), str(pre))
            quantize_static(
                str(pre),
                str(dst),
                Reader(),
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                activation_type=QuantType.QInt8,
                weight_type=QuantType.QInt8,
                calibrate_method=CalibrationMethod.MinMax,
            )
        return dst.read_bytes()
