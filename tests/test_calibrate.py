"""Calibration data loading and range observers."""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from onnx import helper

import mcucompile
from conftest import make_model, ort_run
from mcucompile import CompileError
from mcucompile.calibrate import bias_corrections, collect_ranges, load_calibration
from mcucompile.ir import QuantParams
from mcucompile.verify import run_executable


def _model():
    w = np.random.default_rng(0).standard_normal((4, 2, 3, 3)).astype(np.float32)
    return make_model(
        [helper.make_node("Conv", ["x", "W"], ["y"], kernel_shape=[3, 3])], {"x": ("N", 2, 6, 6)}, ["y"], {"W": w}
    )


def test_npy_and_npz_layouts_give_the_same_samples(tmp_path):
    g = mcucompile.compile(_model(), calibration=np.zeros((1, 2, 6, 6), np.float32)).float_graph
    data = np.random.default_rng(1).standard_normal((5, 2, 6, 6)).astype(np.float32)
    np.save(tmp_path / "a.npy", data)
    np.save(tmp_path / "b.npy", data[:, None])
    np.savez(tmp_path / "c.npz", x=data)
    loaded = [load_calibration(tmp_path / f, g)["x"] for f in ("a.npy", "b.npy", "c.npz")]
    for arr in loaded:
        assert arr.shape == (5, 1, 2, 6, 6)
        np.testing.assert_array_equal(arr[:, 0], data)


def test_npz_without_the_input_name_is_rejected(tmp_path):
    g = mcucompile.compile(_model(), calibration=np.zeros((1, 2, 6, 6), np.float32)).float_graph
    np.savez(tmp_path / "c.npz", other=np.zeros((2, 2, 6, 6), np.float32))
    with pytest.raises(CompileError, match="no array for input"):
        load_calibration(tmp_path / "c.npz", g)


def test_minmax_covers_every_value_and_percentile_clips_outliers():
    g = mcucompile.compile(_model(), calibration=np.zeros((1, 2, 6, 6), np.float32)).float_graph
    data = np.random.default_rng(2).standard_normal((16, 1, 2, 6, 6)).astype(np.float32)
    data[3, 0, 0, 0, 0] = 40.0  # one outlier
    full = collect_ranges(g, {"x": data})
    clipped = collect_ranges(g, {"x": data}, percentile=99.9)
    assert full["x"] == (float(data.min()), 40.0)
    assert clipped["x"][1] < 10.0 and clipped["x"][0] > full["x"][0] - 1e-6


def _channel_mean_errors(compiled, model, test):
    """Per output channel, the mean over samples and pixels of (C int8 output, dequantized) - onnxruntime float."""
    q_in = np.stack([compiled.quantize_input(x) for x in test])
    with tempfile.TemporaryDirectory() as tmp:
        compiled.write(tmp)
        got = run_executable(Path(tmp), "m", q_in.reshape(len(test), -1))
    out_q = compiled.graph.tensors[compiled.graph.outputs[0]].quant
    reference = ort_run(model, test)
    ours = (got.astype(np.float64) - out_q.zp) * out_q.s
    return (ours.reshape(reference.shape) - reference).mean(axis=(0, 1, 3, 4))


def test_bias_correction_removes_the_mean_error_of_int8_weights():
    """A depthwise 3x3 conv after ReLU (inputs with a large mean, only 9 taps per channel): rounding the weights
    shifts each channel's mean output; bias correction on the calibration data removes most of that shift."""
    rng = np.random.default_rng(3)
    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node("Conv", ["r", "W"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], group=16),
    ]
    w = (rng.standard_normal((16, 1, 3, 3)) * 0.4).astype(np.float32)
    model = make_model(nodes, {"x": (1, 16, 12, 12)}, ["y"], {"W": w})
    calib = (rng.standard_normal((32, 1, 16, 12, 12)) + 1.5).astype(np.float32)
    test = (rng.standard_normal((32, 1, 16, 12, 12)) + 1.5).astype(np.float32)
    plain = _channel_mean_errors(mcucompile.compile(model, name="m", calibration=calib, bias_correction=False), model, test)
    corrected = _channel_mean_errors(mcucompile.compile(model, name="m", calibration=calib), model, test)
    rms = lambda e: float(np.sqrt(np.mean(e**2)))  # noqa: E731
    print(f"rms of channel mean errors: {rms(plain):.5f} without, {rms(corrected):.5f} with bias correction")
    assert rms(corrected) < 0.5 * rms(plain), (rms(plain), rms(corrected))


def test_bias_correction_leaves_prequantized_weights_alone():
    """Only weights the compiler rounds itself are corrected: a QDQ model's int8 weights are its own."""
    g = mcucompile.compile(_model(), calibration=np.zeros((1, 2, 6, 6), np.float32)).float_graph
    data = {"x": np.random.default_rng(4).standard_normal((4, 1, 2, 6, 6)).astype(np.float32)}
    assert set(bias_corrections(g, data)) == {g.nodes[0].name}
    w = g.nodes[0].inputs[1]
    given = replace(g.tensors[w], quant=QuantParams(np.ones(4, np.float32) * 0.01, np.zeros(4, np.int32), 0))
    assert bias_corrections(replace(g, tensors={**g.tensors, w: given}), data) == {}
