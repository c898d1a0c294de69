"""Differential fuzzing, bounded for CI: random valid graphs compile, the C equals the int8 reference bit for
bit (built with ASan/UBSan), and the float reference equals onnxruntime. `benchmarks/fuzz.py --minutes N`
runs the same check for longer; each failure it finds becomes a regression test below."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mcucompile
from conftest import assert_bit_exact, ort_run
from fuzz_models import random_model
from mcucompile.simulate import run_float
from mcucompile.verify import run_executable

def check_seed(seed: int) -> None:
    model, shape = random_model(seed)
    rng = np.random.default_rng(seed)
    calib = rng.standard_normal((8, *shape)).astype(np.float32)
    test = rng.standard_normal((3, *shape)).astype(np.float32) * rng.uniform(0.5, 3)
    compiled = mcucompile.compile(model, name="fz", calibration=calib)
    q_in = np.stack([compiled.quantize_input(x) for x in test])
    with tempfile.TemporaryDirectory() as tmp:
        compiled.write(tmp)
        got = run_executable(Path(tmp), "fz", q_in.reshape(len(test), -1))
    assert_bit_exact(got, compiled.run_reference(q_in).reshape(len(test), -1))
    g = compiled.float_graph
    ours = np.stack([run_float(g, {g.inputs[0]: x})[g.outputs[0]] for x in test])
    reference = ort_run(model, test)
    np.testing.assert_allclose(ours.reshape(reference.shape), reference, rtol=1e-3, atol=1e-4)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(st.integers(0, 2**31 - 1))
def test_random_graphs(seed):
    check_seed(seed)


# Failures found here become explicit regression tests next to their op:
# - a per-channel constant Mul on a one-channel input is a [1,1,1] scalar; its fused lookup table came out
#   mis-shaped (test_ops_pointwise.py::test_scalar_constant_of_rank_3_in_a_chain).
