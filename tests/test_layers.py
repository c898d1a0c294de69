"""PyTorch's standard layers (tests/layers.py), exported with the TorchScript exporter at opsets 9 and 13 and with
the torch.export-based exporter: each compiles, its C equals the int8 reference bit for bit (sanitizers), its
float reference equals onnxruntime, and its int8 output reaches 30 dB SQNR against onnxruntime's float model
with its own random inputs as calibration. The few that do not are listed with what happens instead."""

from __future__ import annotations

import warnings

import pytest

import mcucompile
from conftest import check_model
from layers import LAYERS, export

EXPORTS = [(9, False), (13, False), (18, True)]
# Layers outside the target, and why: each is checked to fail in exactly this way.
EXPORT_FAILS = {  # PyTorch's exporter itself refuses them (at these opsets)
    ("channel_shuffle", 9), ("channel_shuffle", 13), ("threshold", 9), ("threshold", 13), ("celu", 9),
    ("unflatten", 9), ("upsample_bilinear2d_ac", 9),
}  # fmt: skip
REFUSED = {"local_response_norm": "rank 5"}  # pools over channels as a 3-D window of a 5-D view
# Functions with a jump (hardshrink by lambda at +-lambda, threshold from 0.1 to 20): the side of the jump an int8
# input lands on decides the output; tests/test_ops_logic.py checks such tables on their own grid.
BELOW_TARGET = {"hardshrink", "threshold"}


@pytest.mark.parametrize("opset,dynamo", EXPORTS, ids=["op9", "op13", "dynamo"])
@pytest.mark.parametrize("name", list(LAYERS))
def test_layer(name, opset, dynamo):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = export(name, opset, dynamo)
    except Exception:
        assert (name, opset) in EXPORT_FAILS, f"PyTorch failed to export {name} at opset {opset}"
        return
    assert (name, opset) not in EXPORT_FAILS or dynamo, f"{name} now exports at opset {opset}: update EXPORT_FAILS"
    if name in REFUSED:
        with pytest.raises(mcucompile.CompileError, match=REFUSED[name]):
            mcucompile.compile(model, calibration=None)
        return
    check_model(model, LAYERS[name].shape, min_sqnr=-1e9 if name in BELOW_TARGET else 30.0, n_test=4)
