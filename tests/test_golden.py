"""Bit-exactness with TensorFlow Lite Micro on the four MLPerf Tiny models (QDQ ONNX import).

The golden outputs in benchmarks/mlperf_tiny/ come from TFLite Micro's own interpreter; every output
of the generated C (built with ASan/UBSan) must equal them: 0 LSB.
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
from pathlib import Path

import numpy as np
import pytest

import mcucompile
from conftest import assert_bit_exact
from mcucompile.verify import run_executable

MLPERF = Path(__file__).resolve().parents[1] / "benchmarks" / "mlperf_tiny"
CASES = [
    ("kws", "kws_golden.npz"),
    ("vww", "vww_golden.npz"),
    ("ic", "ic_golden.npz"),
    ("ad", "ad_golden.npz"),
    ("ad", "ad_real_golden.npz"),
]


def test_data_matches_the_checksums_of_its_provenance():
    """The files are the ones benchmarks/mlperf_tiny/README.md describes (sha256 table), each listed once."""
    rows = re.findall(r"^\| `([^`]+)` \| ([\d,]+) \| `([0-9a-f]{64})` \|$", (MLPERF / "README.md").read_text(), re.M)
    listed = {name for name, _, _ in rows}
    assert len(rows) == len(listed) >= 15
    assert {p.name for p in MLPERF.iterdir() if p.suffix in (".onnx", ".tflite", ".npz")} <= listed
    for name, size, digest in rows:
        data = (MLPERF / name).read_bytes()
        assert (len(data), hashlib.sha256(data).hexdigest()) == (int(size.replace(",", "")), digest), name


@pytest.fixture(scope="module")
def compiled():
    cache: dict[str, mcucompile.CompiledModel] = {}

    def get(model: str) -> mcucompile.CompiledModel:
        if model not in cache:
            cache[model] = mcucompile.compile(MLPERF / f"{model}.onnx", name=model)
        return cache[model]

    return get


@pytest.mark.parametrize("model,golden", CASES, ids=[g.removesuffix(".npz") for _, g in CASES])
def test_generated_c_equals_tflite_micro(compiled, model, golden):
    data = np.load(MLPERF / golden)
    inputs, expected = data["inputs"], data["outputs"]
    cm = compiled(model)
    with tempfile.TemporaryDirectory() as tmp:
        cm.write(tmp)
        got = run_executable(Path(tmp), model, inputs.reshape(len(inputs), -1))
    assert_bit_exact(got, expected.reshape(len(inputs), -1))
    assert_bit_exact(cm.run_reference(inputs).reshape(len(inputs), -1), expected.reshape(len(inputs), -1))


@pytest.mark.parametrize("model", ["kws", "vww", "ic", "ad"])
def test_arena_is_smaller_than_tflite_micros(compiled, model):
    tflm = json.loads((MLPERF / "summary.json").read_text())[model]["tflm_min_arena_bytes_x86_64"]
    cm = compiled(model)
    assert cm.plan.size < tflm
    assert cm.plan.lower_bound <= cm.plan.size
