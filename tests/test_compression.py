"""The compression example (examples/compression/), quick run: each stage checked against oracles outside the
pipeline: onnxruntime on the stage's ONNX file, and parameter and MAC counts taken from the ONNX weights."""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from conftest import ort_run
from mcucompile.verify import run_executable
from test_qdq import lsb_vs_onnxruntime

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples" / "compression"))
import pipeline  # noqa: E402 - examples/compression is not a package


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    return pipeline.run(pipeline.QUICK_EPOCHS_SCALE, tmp_path_factory.mktemp("compression"), log=lambda _: None)


def constants(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    """Initializers and Constant outputs, plus each DequantizeLinear of them evaluated (weights as floats)."""
    values = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant":
            values[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
        elif node.op_type == "DequantizeLinear" and node.input[0] in values:
            q, scale, zero_point = (values[name] for name in node.input)
            shape = [-1] + [1] * (q.ndim - 1) if scale.size > 1 else [1] * q.ndim  # per channel: axis 0 here
            values[node.output[0]] = (q.astype(np.float64) - zero_point.reshape(shape)) * scale.reshape(shape)
    return values


def attribute(node: onnx.NodeProto, name: str, default):
    return next((onnx.helper.get_attribute_value(a) for a in node.attribute if a.name == name), default)


def batchnorm_after(model: onnx.ModelProto) -> dict[str, onnx.NodeProto]:
    """Conv output -> the BatchNormalization node reading it."""
    return {n.input[0]: n for n in model.graph.node if n.op_type == "BatchNormalization"}


def layers(model: onnx.ModelProto) -> list[tuple[onnx.NodeProto, np.ndarray, np.ndarray]]:
    """Every Conv and Gemm in order with its weights and bias as they act after BatchNorm folding."""
    values = constants(model)
    batchnorm = batchnorm_after(model)
    out = []
    for node in model.graph.node:
        if node.op_type not in ("Conv", "Gemm"):
            continue
        w = values[node.input[1]]
        b = values[node.input[2]] if len(node.input) > 2 else np.zeros(len(w))
        bn = batchnorm.get(node.output[0])
        if bn is not None:
            gamma, beta, mean, var = (values[name] for name in bn.input[1:])
            gain = gamma / np.sqrt(var + attribute(bn, "epsilon", 1e-5))
            w, b = w * gain.reshape(-1, *[1] * (w.ndim - 1)), (b - mean) * gain + beta
        out.append((node, w, b))
    return out


def live_params_and_macs(model: onnx.ModelProto) -> tuple[int, int]:
    """Weights + biases and MACs of the chain of layers, counting live channels only. A channel whose folded
    weights and bias are all zero is 0 after ReLU6, so neither it nor the next layer's weights on it are needed."""
    model = onnx.shape_inference.infer_shapes(model)
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in model.graph.value_info}
    params = macs = 0
    live_in = None  # live channels of the previous layer's output
    for node, w, b in layers(model):
        live = np.abs(w).reshape(len(w), -1).sum(1) + np.abs(b) > 0
        n_in = int(live_in.sum()) if live_in is not None else w.shape[1]
        if attribute(node, "group", 1) > 1:  # depthwise: channel c reads input channel c only
            live &= live_in
            n_in = 1
        taps = int(np.prod(w.shape[2:])) if node.op_type == "Conv" else 1
        pixels = int(np.prod(shapes[node.output[0]][2:])) if node.op_type == "Conv" else 1
        params += int(live.sum()) * (n_in * taps + 1)
        macs += pixels * int(live.sum()) * n_in * taps
        live_in = live
    return params, macs


def test_qat_c_agrees_with_onnxruntime_on_the_qdq_model_within_one_lsb(report):
    qat = report["qat"]
    model = onnx.load(qat.onnx_path)
    ops = [n.op_type for n in model.graph.node]
    assert "BatchNormalization" not in ops and ops.count("QuantizeLinear") >= 9
    # Weights: int8 initializers behind DequantizeLinear, one scale per output channel on axis 0.
    values = constants(model)
    producer = {n.output[0]: n for n in model.graph.node}
    for node in model.graph.node:
        if node.op_type in ("Conv", "Gemm"):
            dq = producer[node.input[1]]
            q = values[dq.input[0]]
            assert dq.op_type == "DequantizeLinear" and q.dtype == np.int8 and np.abs(q).max() <= 127
            assert attribute(dq, "axis", 1) == 0 and values[dq.input[1]].shape == (q.shape[0],)
    x = report.data.x_test[:, None]
    lsb = lsb_vs_onnxruntime(qat.compiled, model, x)
    print(f"QAT: C vs onnxruntime (QDQ) {np.mean(lsb == 0) * 100:.2f} % exact, max {int(lsb.max())} LSB")
    assert np.mean(lsb <= 1) >= 0.99


def test_every_stage_c_accuracy_is_close_to_onnxruntime(report, tmp_path):
    data = report.data
    for r in report.results:
        # The float reference comes from onnxruntime here, the C's accuracy from the sanitized executable.
        logits = ort_run(onnx.load(r.onnx_path), data.x_test[:, None]).reshape(len(data.x_test), -1)
        float_accuracy = float(np.mean(logits.argmax(1) == data.y_test))
        r.compiled.write(tmp_path / r.stage)
        q_in = np.stack([r.compiled.quantize_input(x) for x in data.x_test])
        c_out = run_executable(tmp_path / r.stage, r.stage, q_in.reshape(len(q_in), -1))
        c_accuracy = float(np.mean(c_out.argmax(1) == data.y_test))
        print(f"{r.stage}: onnxruntime {float_accuracy:.4f}, C {c_accuracy:.4f}")
        assert r.float_accuracy == float_accuracy
        assert abs(r.c_accuracy - c_accuracy) <= 1 / len(data.y_test)  # the C's own input rounding may differ
        assert float_accuracy >= 0.75  # trained, even after a few epochs (chance is 0.1)
        assert abs(c_accuracy - float_accuracy) <= 0.02


def test_pruning_zeroes_half_the_filters_with_their_batchnorm_and_depthwise_channels(report):
    def zeroed(path: Path) -> list[tuple[int, np.ndarray]]:
        """(group, zeroed output channels) of each Conv: weights, BatchNorm gamma and beta all zero."""
        model = onnx.load(path)
        values, batchnorm = constants(model), batchnorm_after(model)
        masks = []
        for node in model.graph.node:
            if node.op_type == "Conv":
                w = values[node.input[1]]
                gamma, beta = (values[name] for name in batchnorm[node.output[0]].input[1:3])
                zero = (np.abs(w).reshape(len(w), -1).max(1) == 0) & (gamma == 0) & (beta == 0)
                masks.append((attribute(node, "group", 1), zero))
        return masks

    assert not any(zero.any() for _, zero in zeroed(report["distilled"].onnx_path))
    pruned = zeroed(report["pruned"].onnx_path)
    standard = [zero for group, zero in pruned if group == 1]
    assert len(standard) == 4  # the stem and the three pointwise convolutions
    assert [int(z.sum()) for z in standard] == [round(pipeline.PRUNE_FRACTION * len(z)) for z in standard]
    for (_, before), (group, zero) in itertools.pairwise(pruned):
        if group > 1:  # a depthwise channel reading a pruned filter is pruned with it
            np.testing.assert_array_equal(zero, before)


def test_pruned_models_compile_to_their_live_params_and_macs(report):
    student, pruned, qat = report["student"], report["pruned"], report["qat"]
    dense = live_params_and_macs(onnx.load(student.onnx_path))
    assert (student.params, student.macs) == dense  # the counting agrees with the compiler's on a dense model
    live = live_params_and_macs(onnx.load(pruned.onnx_path))
    assert live[0] < dense[0] * 0.5 and live[1] < dense[1] * 0.6
    assert (pruned.params, pruned.macs) == live
    assert (qat.params, qat.macs) == live_params_and_macs(onnx.load(qat.onnx_path)) == live
    for r in (pruned, qat):
        p = r.compiled.pruning
        assert (p.params_removed, p.macs_removed) == (dense[0] - r.params, dense[1] - r.macs)
        assert p.channels_removed > 0 and p.bytes_removed > 0
    table = report.table("test")
    rows = [line for line in table.splitlines() if line.startswith("| ")]
    assert len(rows) == 1 + len(report.results) and table.count("dead-channel elimination removed") == 2
