"""quant.py against an independent pure-Python transcription of TFLite's arithmetic, and against the C twin."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import cffi
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcucompile import quant
from mcucompile.resources import runtime_dir
from mcucompile.verify import build_shared_library

INT32 = st.integers(-(2**31), 2**31 - 1)


def tflite_quantize_multiplier(m: float) -> tuple[int, int]:
    """Straight from the TFLite spec: frexp, round half away, renormalise, underflow to 0."""
    if m == 0:
        return 0, 0
    q, shift = math.frexp(m)
    fixed = int(math.copysign(math.floor(abs(q) * 2**31 + 0.5), q))
    if fixed == 2**31:
        fixed, shift = fixed // 2, shift + 1
    if shift < -31:
        return 0, 0
    return fixed, shift


def gemmlowp_requantize(x: int, m: int, shift: int) -> int:
    """MultiplyByQuantizedMultiplier with Python integers (exact), written independently of quant.py."""
    left, right = max(shift, 0), max(-shift, 0)
    a = max(min(x * (1 << left), 2**31 - 1), -(2**31))
    if a == m == -(2**31):
        high = 2**31 - 1
    else:
        ab = a * m
        nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
        num = ab + nudge
        high = abs(num) // 2**31 * (1 if num >= 0 else -1)  # C division truncates toward zero
    mask = (1 << right) - 1
    rem = high & mask
    threshold = (mask >> 1) + (1 if high < 0 else 0)
    return (high >> right) + (1 if rem > threshold else 0)


@given(st.floats(min_value=1e-9, max_value=1e3, allow_nan=False))
def test_quantize_multiplier_matches_tflite(m):
    assert quant.quantize_multiplier(m) == tflite_quantize_multiplier(m)


@given(st.floats(min_value=1e-6, max_value=100.0))
def test_quantize_multiplier_represents_the_real_value(m):
    mult, shift = quant.quantize_multiplier(m)
    assert 2**30 <= mult < 2**31
    assert abs(mult * 2.0 ** (shift - 31) - m) <= m * 2**-30


@settings(max_examples=300)
@given(INT32, st.integers(2**30, 2**31 - 1), st.integers(-31, 8))
def test_requantize_matches_independent_transcription(x, m, shift):
    got = int(quant.multiply_by_quantized_multiplier(np.array([x]), np.array([m]), np.array([shift]))[0])
    assert got == gemmlowp_requantize(x, m, shift)


def test_rounding_divide_by_pot_rounds_halves_away_from_zero():
    x = np.array([5, -5, 6, -6, 7, -7])
    assert quant.rounding_divide_by_pot(x, np.full(6, 1)).tolist() == [3, -3, 3, -3, 4, -4]


def test_choose_qparams_holds_zero_exactly_and_covers_the_range():
    for lo, hi in [(-1.0, 3.0), (0.0, 6.0), (-2.5, -0.5), (0.1, 0.2)]:
        q = quant.choose_qparams(lo, hi)
        assert quant.dequantize(np.array([q.zp], np.int8), q)[0] == 0.0
        assert q.s * 255 >= (max(hi, 0) - min(lo, 0)) * (1 - 1e-6)


def test_activation_range_of_relu6_is_tflites():
    q = quant.choose_qparams(0.0, 6.0)
    lo, hi = quant.activation_range((0.0, 6.0), q)
    assert lo == q.zp and hi == min(127, q.zp + round(6.0 / q.s))


def _c_support_library(no_long_mul: bool, define: str = ""):
    """mcu_requantize, mcu_doubling_high_mul and mcu_requantize_fast through cffi; no_long_mul: the Thumb-1 path of
    16x16 products; define: one more macro set to 1 (MCU_EMULATE_DSP: the DSP path on its C twins)."""
    src = (
        ("#define MCU_NO_LONG_MUL 1\n" if no_long_mul else "")
        + (f"#define {define} 1\n" if define else "")
        + '#include "mcu_nn_support.h"\n'
        "int32_t requantize(int32_t x, int32_t m, int32_t s) { return mcu_requantize(x, m, s); }\n"
        "int32_t high_mul(int32_t a, int32_t b) { return mcu_doubling_high_mul(a, b); }\n"
        "int32_t requantize_fast(int32_t x, int32_t m, int32_t s, int32_t o)\n"
        "{ return mcu_requantize_fast(x, m, s, o); }\n"
    )
    tmp = tempfile.mkdtemp()
    c_file = Path(tmp) / "support.c"
    c_file.write_text(src)
    import shutil

    for h in (runtime_dir() / "include").glob("*.h"):
        shutil.copy(h, tmp)
    lib = build_shared_library(c_file, Path(tmp))
    ffi = cffi.FFI()
    ffi.cdef("int32_t requantize(int32_t x, int32_t m, int32_t s); int32_t high_mul(int32_t a, int32_t b);"
             "int32_t requantize_fast(int32_t x, int32_t m, int32_t s, int32_t o);")
    return ffi.dlopen(str(lib))


INT32_EDGES = [0, 1, -1, 2, -2, 2**15 - 1, 2**15, -(2**15), 2**16 - 1, 2**16, -(2**16), 2**30, -(2**30),
               2**31 - 1, 2**31 - 2, -(2**31), -(2**31) + 1]


@pytest.mark.parametrize("no_long_mul", [False, True], ids=["long_mul", "thumb1_16x16"])
def test_c_requantize_equals_numpy_on_random_and_edge_values(no_long_mul):
    lib = _c_support_library(no_long_mul)
    rng = np.random.default_rng(0)
    xs = np.concatenate([rng.integers(-(2**31), 2**31, 3000), np.repeat(INT32_EDGES, 3)])
    # the multipliers quantize_multiplier produces: 0 or [2^30, 2^31)
    ms = np.concatenate([rng.integers(2**30, 2**31, 3000), np.tile([0, 2**30, 2**31 - 1], len(INT32_EDGES))])
    shifts = rng.integers(-31, 6, xs.size)
    expected = quant.multiply_by_quantized_multiplier(xs, ms, shifts)
    got = np.array([lib.requantize(int(x), int(m), int(s)) for x, m, s in zip(xs, ms, shifts)])
    mismatches = np.flatnonzero(got != expected)
    assert mismatches.size == 0, [(xs[i], ms[i], shifts[i], got[i], expected[i]) for i in mismatches[:5]]


@pytest.mark.parametrize("no_long_mul", [False, True], ids=["long_mul", "thumb1_16x16"])
def test_c_doubling_high_mul_equals_numpy_over_the_whole_int32_range(no_long_mul):
    lib = _c_support_library(no_long_mul)
    rng = np.random.default_rng(1)
    edges = np.array(np.meshgrid(INT32_EDGES, INT32_EDGES)).reshape(2, -1)  # includes (INT32_MIN, INT32_MIN)
    a = np.concatenate([rng.integers(-(2**31), 2**31, 20000), edges[0]])
    b = np.concatenate([rng.integers(-(2**31), 2**31, 20000), edges[1]])
    expected = quant.saturating_rounding_doubling_high_mul(a, b)
    got = np.array([lib.high_mul(int(x), int(y)) for x, y in zip(a, b)])
    mismatches = np.flatnonzero(got != expected)
    assert mismatches.size == 0, [(a[i], b[i], got[i], expected[i]) for i in mismatches[:5]]


@given(st.floats(min_value=1e-12, max_value=1e6, allow_nan=False))
def test_quantize_multiplier_stays_in_the_range_the_c_requantize_assumes(real):
    m, _ = quant.quantize_multiplier(real)
    assert m == 0 or 2**30 <= m < 2**31


@pytest.mark.parametrize("path", ["long_mul", "thumb1", "dsp"])
def test_c_requantize_fast_equals_numpy_in_its_range(path):
    """mcu_requantize_fast (the *_fast kernels' requantization: |x| < 2^29, shift in [-31, 0]) on each of its
    paths: the 64-bit product, Thumb-1's three 11-bit pieces (|x| < 2^19, else the 16x16 products) and SMMULR."""
    lib = _c_support_library(path == "thumb1", "MCU_EMULATE_DSP" if path == "dsp" else "")
    rng = np.random.default_rng(2)
    edges = [0, 1, -1, 2**19 - 1, 2**19, -(2**19), -(2**19) - 1, 2**29 - 1, -(2**29) + 1, 2**18, -(2**18)]
    xs = np.concatenate([rng.integers(-(2**29) + 1, 2**29, 2000), rng.integers(-(2**19), 2**19, 2000),
                         rng.integers(-2000, 2000, 1000), np.repeat(edges, 20)])
    ms = rng.choice(np.array([0, 2**30, 2**31 - 1]), xs.size)
    ms = np.where(rng.random(xs.size) < 0.8, rng.integers(2**30, 2**31, xs.size), ms)
    shifts = rng.integers(-31, 1, xs.size)
    offsets = rng.integers(-128, 128, xs.size)
    expected = quant.multiply_by_quantized_multiplier(xs, ms, shifts) + offsets
    got = np.array([lib.requantize_fast(int(x), int(m), int(s), int(o)) for x, m, s, o in zip(xs, ms, shifts, offsets)])
    mismatches = np.flatnonzero(got != expected)
    assert mismatches.size == 0, [(xs[i], ms[i], shifts[i], offsets[i], got[i], expected[i]) for i in mismatches[:5]]
