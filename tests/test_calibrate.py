"""Calibration data loading and range observers."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

import mcucompile
from conftest import make_model
from mcucompile import CompileError
from mcucompile.calibrate import collect_ranges, load_calibration


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
