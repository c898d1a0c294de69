"""The network-family zoo (tests/zoo.py) end to end: export from PyTorch at opsets 13 and 17 and two input
sizes, calibrate on 32 random inputs, then on 256 other random inputs:

- the C (built with ASan/UBSan) equals the numpy int8 reference bit for bit (on 16 of them), and the
  compiler's float graph equals onnxruntime's float model (conftest.check_model) -- always enforced;
- against onnxruntime on the float model: SQNR >= 25 dB and top-1 agreement >= 0.98 (SQNR only for the
  autoencoder).

The zoo's networks have random weights, and some of them cannot reach those figures with int8 per-tensor
activations at all: squeeze-excitation gating and SiLU/hard-swish cost 4-5 dB each at 32 px (15-25 dB), and
near-tied float logits flip top-1 on a few percent of inputs (see benchmarks/BENCHMARKS.md). A case below the
thresholds is therefore compared with onnxruntime's own quantizer (quantize_static, QDQ, per-channel MinMax,
after its quant_pre_process) on the same model and data: if ours is no worse than it (SQNR within 0.5 dB, top-1
within 3 points -- about two standard deviations of the difference in flip rate between two equally good
quantizers over 256 inputs), the case is reported as xfail with both figures, whether that quantizer meets the
thresholds or misses them too (a 1-point top-1 difference on near-tied logits is noise either way); otherwise
it fails.

All 100 cases (20 families x 2 opsets x 2 sizes of the TorchScript exporter, and the torch.export-based exporter
at the smaller size) run, about 3 s each.
"""

from __future__ import annotations

import numpy as np
import pytest

import zoo
from conftest import check_model
from mcucompile.verify import accuracy, onnxruntime_outputs

MIN_SQNR_DB = 25.0
MIN_TOP1 = 0.98
CALIBRATION_SAMPLES = 32
TEST_SAMPLES = 256  # the C runs them all (accuracy); top-1 over fewer is dominated by a few near-tied logits
EXACT_SAMPLES = 16  # of which the slow numpy references check this many bit for bit
SQNR_TOLERANCE_DB = 0.5  # ours may trail onnxruntime's quantizer by this much where both miss
TOP1_TOLERANCE = 0.03  # likewise, in top-1 agreement (see the module docstring)
TEST_SEED = 2  # the calibration inputs use seed 1

CASES = [
    pytest.param(family, opset, size, False, id=f"{family}-op{opset}-{size}")
    for family in zoo.FAMILIES
    for opset in zoo.OPSETS
    for size in zoo.sizes(family)
] + [  # the default torch.export-based exporter, at the smaller size
    pytest.param(family, zoo.DYNAMO_OPSET, zoo.sizes(family)[0], True, id=f"{family}-dynamo-{zoo.sizes(family)[0]}")
    for family in zoo.FAMILIES
]


def meets(acc, classifier: bool) -> bool:
    return acc.sqnr_db >= MIN_SQNR_DB and (not classifier or acc.top1_agreement >= MIN_TOP1)


@pytest.mark.parametrize("family, opset, size, dynamo", CASES)
def test_zoo_family(family, opset, size, dynamo):
    model = zoo.export(family, opset, size, dynamo)
    calib = zoo.samples(family, size, CALIBRATION_SAMPLES, seed=1)
    test = zoo.samples(family, size, TEST_SAMPLES, seed=TEST_SEED)
    _, acc = check_model(
        model,
        zoo.input_shape(family, size),
        calib=calib,
        test=test,
        n_exact=EXACT_SAMPLES,
        min_sqnr=-np.inf,  # the accuracy thresholds are applied below
        name=family,
    )
    classifier = zoo.FAMILIES[family].classifier
    print(f"{family} opset {opset} size {size}: {acc}")
    if meets(acc, classifier):
        return

    reference = onnxruntime_outputs(model.SerializeToString(), test)
    ort = accuracy(reference, onnxruntime_outputs(zoo.ort_quantize(model, calib), test))
    figures = f"ours: {acc}; onnxruntime quantize_static: {ort}"
    no_worse = acc.sqnr_db >= ort.sqnr_db - SQNR_TOLERANCE_DB and (
        not classifier or acc.top1_agreement >= ort.top1_agreement - TOP1_TOLERANCE
    )
    if no_worse:  # within noise of onnxruntime's quantizer on the same network and data, whether or not it meets
        pytest.xfail(f"below {MIN_SQNR_DB} dB / top-1 {MIN_TOP1} on this random network, within noise of "
                     f"onnxruntime's quantizer: {figures}")
    raise AssertionError(f"int8 vs onnxruntime float below {MIN_SQNR_DB} dB / top-1 {MIN_TOP1}: {figures}")
