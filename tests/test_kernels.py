"""Property tests: every runtime_c kernel, called directly through cffi (built with UBSan), equals its numpy
reference bit for bit on random shapes, strides, pads, zero points, extreme multipliers and saturating inputs."""

from __future__ import annotations

import re
import subprocess
import tempfile
from pathlib import Path

import cffi
import numpy as np
import pytest
from conftest import assert_bit_exact
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mcucompile import quant
from mcucompile.ir import KernelCall, QuantParams
from mcucompile.ops import kernel_reference
from mcucompile.ops.elementwise import add_params, broadcast_gather, broadcast_operands, mul_params, requantize_values
from mcucompile.ops.prelu import prelu_params
from mcucompile.ops.reduce import REDUCE_MAX, REDUCE_MEAN, REDUCE_MIN
from mcucompile.ops.registry import store_output
from mcucompile.ops.reshape import transpose_call
from mcucompile.ops.select import COMPARE_CODES
from mcucompile.ops.slicing import slice_call, strided_copy_call
from mcucompile.ops.softmax import softmax_params
from mcucompile.resources import runtime_dir

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def c():
    return build_runtime()


@pytest.fixture(scope="module")
def c_dsp():
    """The runtime with -DMCU_EMULATE_DSP: the *_fast kernels take their DSP path on portable intrinsics."""
    return build_runtime("-DMCU_EMULATE_DSP")


def build_runtime(*flags: str):
    root = runtime_dir()
    tmp = Path(tempfile.mkdtemp(prefix="mcu_kernels_"))
    lib = tmp / "libmcu_nn.so"
    sources = sorted(str(p) for p in root.glob("src/*/*.c"))
    subprocess.run(
        [
            "gcc",
            "-std=c99",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-pedantic",
            "-O1",
            "-fPIC",
            "-shared",
            "-fsanitize=undefined",
            "-fno-sanitize-recover=undefined",
            *flags,
            "-I",
            str(root / "include"),
            *sources,
            "-o",
            str(lib),
        ],
        check=True,
    )
    ffi = cffi.FFI()
    types = (root / "include" / "mcu_nn_types.h").read_text()
    protos = (root / "include" / "mcu_nn.h").read_text().replace("MCU_API ", "")
    # cffi takes integer #defines (MCU_MAX_RANK sizes arrays), no other preprocessor line
    keep = re.compile(r"#define \w+ \d+$|[^#]")
    ffi.cdef("\n".join(line for text in (types, protos) for line in text.splitlines() if keep.match(line) or not line))
    return ffi, ffi.dlopen(str(lib))


def real_multipliers():
    """Rescaling factors from underflow (< 2^-31, encoded as 0) through ordinary to > 1 (left shifts)."""
    return st.one_of(st.floats(1e-13, 1e-10), st.floats(1e-5, 0.999), st.floats(1.0, 400.0))


def int8_arrays(draw, n):
    kind = draw(st.sampled_from(["random", "saturated", "extremes"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if kind == "saturated":
        return np.full(n, draw(st.sampled_from([-128, 127])), np.int8)
    if kind == "extremes":
        return rng.choice(np.array([-128, -127, 0, 126, 127], np.int8), n)
    return rng.integers(-128, 128, n).astype(np.int8)


@st.composite
def activation(draw):
    lo = draw(st.integers(-128, 127))
    return lo, draw(st.integers(lo, 127))


def arr(ffi, ctype, values):
    return ffi.new(f"{ctype}[]", [int(v) for v in np.asarray(values).ravel()] or [0])


def ptr(ffi, a: np.ndarray, ctype="int8_t"):
    return ffi.from_buffer(f"{ctype}[]", a)


def check(call: KernelCall, inputs, got: np.ndarray) -> None:
    check_equal(got, np.asarray(kernel_reference(call.kernel)(call, inputs), np.int8))


def output_stride(draw, channels: int) -> tuple[int, int]:
    """(output_stride, byte offset of the output in its buffer): dense half the time, else a channel slice of a
    wider tensor (a concatenation) at any channel offset."""
    if draw(st.booleans()):
        return 0, 0
    extra = draw(st.integers(1, 6))
    return channels + extra, draw(st.integers(0, extra))


def output_buffer(call: KernelCall, offset: int) -> np.ndarray:
    """A buffer for the call's output from byte `offset`, pixels output_stride apart, holding a pattern that the
    kernel must leave alone outside its slice."""
    dims = call.params["out_dims"]
    pixels, step = int(np.prod(dims[:3])), call.params.get("output_stride") or dims[3]
    return (np.arange(offset + pixels * step) * 37 % 256 - 128).astype(np.int8)


def check_stored(call: KernelCall, inputs, before: np.ndarray, offset: int, got: np.ndarray) -> None:
    """`got` (the whole buffer after the C ran) == `before` with the reference's result stored as the C must."""
    expected = before.copy()
    store_output(call, kernel_reference(call.kernel)(call, inputs), expected, offset)
    check_equal(got, expected)


def check_equal(got: np.ndarray, expected: np.ndarray) -> None:
    bad = np.flatnonzero(got.ravel() != expected.ravel())
    assert bad.size == 0, f"{bad.size} differ; first at {bad[0]}: C {got.ravel()[bad[0]]} ref {expected.ravel()[bad[0]]}"


@st.composite
def conv_cases(draw, depthwise: bool):
    n, h, w = draw(st.integers(1, 2)), draw(st.integers(1, 8)), draw(st.integers(1, 8))
    groups = 1 if depthwise else draw(st.sampled_from([1, 1, 2, 3]))  # grouped: every group its own channels
    cin = draw(st.integers(1, 5)) * groups
    cout = cin * draw(st.integers(1, 3)) if depthwise else draw(st.integers(1, 4)) * groups
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw, dh, dw = (draw(st.integers(1, 3)) for _ in range(4))
    ph, pw = draw(st.integers(0, kh)), draw(st.integers(0, kw))
    oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    ow = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    if oh < 1 or ow < 1:
        oh, ow, ph, pw, dh, dw, kh, kw = 1, 1, 0, 0, 1, 1, min(kh, h), min(kw, w)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    filt = (1, kh, kw, cout) if depthwise else (cout, kh, kw, cin // groups)
    weights = rng.integers(-127, 128, filt).astype(np.int8)
    mult, shift = quant.quantize_multipliers([draw(real_multipliers()) for _ in range(cout)])
    lo, hi = draw(activation())
    params = dict(
        input_offset=draw(st.integers(-127, 128)),
        output_offset=draw(st.integers(-128, 127)),
        stride=(sh, sw),
        padding=(ph, pw),
        dilation=(dh, dw),
        act_min=lo,
        act_max=hi,
        in_dims=(n, h, w, cin),
        filter_dims=filt,
        out_dims=(n, oh, ow, cout),
    )
    params["output_stride"], offset = output_stride(draw, cout)
    arrays = dict(
        weights=weights, bias=rng.integers(-(2**20), 2**20, cout).astype(np.int32), multiplier=mult, shift=shift
    )
    kernel = "mcu_depthwise_conv_s8" if depthwise else "mcu_conv_s8"
    call = KernelCall(kernel, "", "t", params, arrays, scratch_bytes=0 if depthwise else 2 * kh * kw * cin // groups)
    return call, int8_arrays(draw, n * h * w * cin), offset


def run_conv(c, call, x, offset=0):
    """The whole output buffer (output_buffer) after the kernel wrote its output at byte `offset`."""
    ffi, lib = c
    p, a = call.params, call.arrays
    params = ffi.new(
        "mcu_conv_params *",
        {
            "input_offset": p["input_offset"],
            "output_offset": p["output_offset"],
            "stride": dict(zip("hw", p["stride"])),
            "padding": dict(zip("hw", p["padding"])),
            "dilation": dict(zip("hw", p["dilation"])),
            "activation": {"min": p["act_min"], "max": p["act_max"]},
            "output_stride": p.get("output_stride", 0),
        },
    )
    mult, shift = arr(ffi, "int32_t", a["multiplier"]), arr(ffi, "int32_t", a["shift"])
    q = ffi.new("mcu_per_channel_quant *", {"multiplier": mult, "shift": shift})
    dims = [ffi.new("mcu_dims *", dict(zip("nhwc", p[k]))) for k in ("in_dims", "filter_dims", "out_dims")]
    scratch = ffi.new("int16_t[]", max(call.scratch_bytes // 2, 1))
    ctx = ffi.new("mcu_context *", {"buf": scratch, "size": call.scratch_bytes})
    out = output_buffer(call, offset)
    w, b = arr(ffi, "int8_t", a["weights"]), arr(ffi, "int32_t", a["bias"])
    status = getattr(lib, call.kernel)(
        ctx, params, q, dims[0], ptr(ffi, x), dims[1], w, b, dims[2], ptr(ffi, out[offset:])
    )
    assert status == 0
    return out


@SETTINGS
@given(conv_cases(depthwise=False))
def test_conv_s8(c, case):
    call, x, offset = case
    check_stored(call, [x], output_buffer(call, offset), offset, run_conv(c, call, x, offset))


@SETTINGS
@given(conv_cases(depthwise=True))
def test_depthwise_conv_s8(c, case):
    call, x, offset = case
    check_stored(call, [x], output_buffer(call, offset), offset, run_conv(c, call, x, offset))


@st.composite
def conv_fast_cases(draw):
    """mcu_conv_s8_fast calls as ops/conv.py lowers them (bias with the input offset folded in, weights packed):
    1x1, 3x3, 10x4 and random kernels, strides, dilations and pads (windows partly or wholly outside the image),
    odd and even pixel counts and output channels, depths around the chunks of 4; and the same conv as an
    mcu_conv_s8 call with the plain weights and bias."""
    from mcucompile.ops.conv import _folded_bias, conv_fast_scratch, pack_conv_fast

    kh, kw = draw(st.sampled_from([(1, 1), (3, 3), (10, 4)]) | st.tuples(st.integers(1, 4), st.integers(1, 4)))
    n, cin, cout = draw(st.integers(1, 2)), draw(st.integers(1, 9)), draw(st.integers(1, 7))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    dh, dw = (1, 1) if kh * kw > 16 else (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    ph, pw = draw(st.integers(0, kh)), draw(st.integers(0, kw))
    # at least one output pixel: the (dilated) window fits the padded image
    h = max(draw(st.integers(1, 8)), dh * (kh - 1) + 1 - 2 * ph)
    w = max(draw(st.integers(1, 8)), dw * (kw - 1) + 1 - 2 * pw)
    oh, ow = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1, (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if draw(st.booleans()):
        weights = rng.integers(-127, 128, (cout, kh, kw, cin)).astype(np.int8)
    else:
        weights = rng.choice(np.array([-127, 127], np.int8), (cout, kh, kw, cin))
    # rescalings below 1 (right shifts), from underflow to ordinary: lower_conv gives larger ones to mcu_conv_s8
    scales = st.floats(1e-13, 1e-10) | st.floats(1e-5, 0.999) | st.floats(1e-4, 4e-3)
    mult, shift = quant.quantize_multipliers([draw(scales) for _ in range(cout)])
    lo, hi = draw(activation())
    params = dict(
        input_offset=draw(st.sampled_from([-127, 128, 0]) | st.integers(-127, 128)),
        output_offset=draw(st.integers(-128, 127)),
        stride=(sh, sw),
        padding=(ph, pw),
        dilation=(dh, dw),
        act_min=lo,
        act_max=hi,
        in_dims=(n, h, w, cin),
        filter_dims=(cout, kh, kw, cin),
        out_dims=(n, oh, ow, cout),
    )
    params["output_stride"], offset = output_stride(draw, cout)
    bias = rng.integers(-(2**20), 2**20, cout).astype(np.int32)
    folded = _folded_bias(weights, bias, params)
    assert folded is not None
    fast = KernelCall("mcu_conv_s8_fast", "", "t", params,
                      dict(weights=pack_conv_fast(weights), bias=folded, multiplier=mult, shift=shift),
                      scratch_bytes=conv_fast_scratch(params["filter_dims"]))
    generic = KernelCall("mcu_conv_s8", "", "t", params,
                         dict(weights=weights, bias=bias, multiplier=mult, shift=shift),
                         scratch_bytes=2 * kh * kw * cin)
    return fast, generic, int8_arrays(draw, n * h * w * cin), offset


@pytest.mark.parametrize("path", ["portable", "emulated_dsp"])
@SETTINGS
@given(case=conv_fast_cases())
def test_conv_s8_fast(c, c_dsp, path, case):
    fast, generic, x, offset = case
    got = run_conv(c if path == "portable" else c_dsp, fast, x, offset)
    check_stored(fast, [x], output_buffer(fast, offset), offset, got)
    check_stored(generic, [x], output_buffer(fast, offset), offset, got)  # the fold and packing change nothing


def test_conv_fast_weight_packing_round_trips():
    from mcucompile.ops.conv import pack_conv_fast, unpack_conv_fast

    for o in range(1, 6):
        for depth in range(1, 11):
            w = (np.arange(o * depth) % 250 - 124).astype(np.int8).reshape(o, 1, 1, depth)
            w[w == 0] = 1
            packed = pack_conv_fast(w)
            padded = depth + -depth % 4  # zero weights fill the last chunk of 4
            assert packed.shape == (o * padded,) and np.array_equal(unpack_conv_fast(packed, w.shape), w)
            assert np.count_nonzero(packed) == np.count_nonzero(w)
            if o >= 2 and depth >= 4:  # pair 0, chunk 0: channels 0 and 1 at depths 0, 2, 1, 3
                flat = w.reshape(o, depth)
                assert list(packed[:8]) == [flat[0, 0], flat[1, 0], flat[0, 2], flat[1, 2],
                                            flat[0, 1], flat[1, 1], flat[0, 3], flat[1, 3]]


def test_conv_s8_fast_rejects_what_it_does_not_implement(c):
    base = dict(input_offset=0, output_offset=0, stride=(1, 1), padding=(0, 0), dilation=(1, 1), act_min=-128,
                act_max=127, in_dims=(1, 2, 2, 3), filter_dims=(2, 1, 1, 3), out_dims=(1, 2, 2, 2), output_stride=0)
    arrays = dict(weights=np.ones((2, 1, 1, 3), np.int8), bias=np.zeros(2, np.int32),
                  multiplier=np.full(2, 2**30, np.int32), shift=np.zeros(2, np.int32))
    x = np.zeros(12, np.int8)
    from mcucompile.ops.conv import conv_fast_scratch

    size = conv_fast_scratch(base["filter_dims"])
    run_conv(c, KernelCall("mcu_conv_s8_fast", "", "t", base, arrays, scratch_bytes=size), x)
    for change in (dict(filter_dims=(2, 1, 1, 2)), dict(out_dims=(1, 2, 2, 3)), dict(out_dims=(2, 2, 2, 2)),
                   dict(output_stride=1)):
        call = KernelCall("mcu_conv_s8_fast", "", "t", {**base, **change}, arrays, scratch_bytes=size)
        with pytest.raises(AssertionError):
            run_conv(c, call, x)
    with pytest.raises(AssertionError):  # scratch too small
        run_conv(c, KernelCall("mcu_conv_s8_fast", "", "t", base, arrays, scratch_bytes=size - 4), x)


@st.composite
def depthwise_3x3_fast_cases(draw):
    """mcu_depthwise_conv_3x3_s8_fast calls as ops/conv.py lowers them (weights packed, bias with the input offset
    folded in), channels around the blocks of 4 and past a chunk of 64 (70: chunks of 64 and 4, two left), strides
    1/2, any padding (windows fully outside the image too), multipliers below 1 (right shifts, as lower_conv
    requires), biases up to 2^28; and the same conv as an mcu_depthwise_conv_s8 call with the plain weights and
    bias; and whether the input starts off a word boundary (byte path)."""
    from mcucompile.ops.conv import _depthwise_3x3_bias, pack_depthwise_3x3
    from mcucompile.ops.window import Window

    n, h, w = draw(st.integers(1, 2)), draw(st.integers(1, 8)), draw(st.integers(1, 8))
    c = draw(st.integers(1, 13) | st.integers(1, 13) | st.sampled_from([64, 70]))
    sh, sw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    pt, pl, pb, pr = (draw(st.integers(0, 3)) for _ in range(4))
    oh, ow = (h + pt + pb - 3) // sh + 1, (w + pl + pr - 3) // sw + 1
    if oh < 1 or ow < 1:
        pt, pl, pb, pr = 1, 1, 2, 2
        oh, ow = (h + 3 - 3) // sh + 1, (w + 3 - 3) // sw + 1
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if draw(st.booleans()):
        weights = rng.integers(-127, 128, (1, 3, 3, c)).astype(np.int8)
    else:
        weights = rng.choice(np.array([-127, 127], np.int8), (1, 3, 3, c))
    # mostly rescalings that keep 9-tap sums inside int8 (not saturated), so every wrong tap shows; below 1 (a
    # right shift, down to the underflow to 0) as lower_conv picks this kernel only for those
    scales = st.floats(1e-4, 4e-3) | st.floats(1e-4, 4e-3) | st.floats(1e-13, 1e-10) | st.floats(1e-5, 0.999)
    mult, shift = quant.quantize_multipliers([draw(scales) for _ in range(c)])
    lo, hi = draw(activation() | st.just((-128, 127)))
    params = dict(
        input_offset=draw(st.sampled_from([-127, 128, 0]) | st.integers(-127, 128)),
        output_offset=draw(st.integers(-128, 127)),
        stride=(sh, sw),
        padding=(pt, pl),
        dilation=(1, 1),
        act_min=lo,
        act_max=hi,
        in_dims=(n, h, w, c),
        filter_dims=(1, 3, 3, c),
        out_dims=(n, oh, ow, c),
    )
    params["output_stride"], offset = output_stride(draw, c)
    bias = rng.integers(-(2**12), 2**12, c).astype(np.int32) << draw(st.sampled_from([0, 0, 0, 8, 16]))
    folded = _depthwise_3x3_bias(weights, bias, params, Window((3, 3), (sh, sw), (1, 1), (pt, pl, pb, pr), (oh, ow)))
    assert folded is not None
    fast = KernelCall("mcu_depthwise_conv_3x3_s8_fast", "", "t", params,
                      dict(weights=pack_depthwise_3x3(weights), bias=folded, multiplier=mult, shift=shift))
    generic = KernelCall("mcu_depthwise_conv_s8", "", "t", params,
                         dict(weights=weights, bias=bias, multiplier=mult, shift=shift))
    return fast, generic, int8_arrays(draw, n * h * w * c), offset, draw(st.sampled_from([0, 0, 1, 2]))


@pytest.mark.parametrize("path", ["portable", "emulated_dsp"])
@SETTINGS
@given(case=depthwise_3x3_fast_cases())
def test_depthwise_conv_3x3_s8_fast(c, c_dsp, path, case):
    fast, generic, x, offset, skew = case
    shifted = np.zeros(x.size + skew, np.int8)  # the input `skew` bytes past a word boundary
    shifted[skew:] = x
    got = run_conv(c if path == "portable" else c_dsp, fast, shifted[skew:], offset)
    check_stored(fast, [x], output_buffer(fast, offset), offset, got)
    check_stored(generic, [x], output_buffer(fast, offset), offset, got)  # the fold and packing change nothing


def test_depthwise_3x3_weight_packing_round_trips():
    from mcucompile.ops.conv import pack_depthwise_3x3, unpack_depthwise_3x3

    for c in range(1, 14):
        w = np.arange(9 * c, dtype=np.int64).astype(np.int8).reshape(1, 3, 3, c)
        packed = pack_depthwise_3x3(w)
        assert packed.shape == (9 * c,)
        assert np.array_equal(unpack_depthwise_3x3(packed, c), w[0])
        full = c - c % 4
        if full:  # block 0: taps 0 and 3 (ky = 0, 1 of kx = 0) of channels 0, 1, then of channels 2, 3; ...
            t = w[0].reshape(9, c)
            assert list(packed[:8]) == [t[0, 0], t[0, 1], t[3, 0], t[3, 1], t[0, 2], t[0, 3], t[3, 2], t[3, 3]]
            assert list(packed[24:28]) == list(t[8, :4])  # tap 8 after the three column pairs
            assert list(packed[28:32]) == [t[6, 0], t[6, 1], t[7, 0], t[7, 1]]


def test_depthwise_conv_3x3_s8_fast_rejects_what_it_does_not_implement(c):
    base = dict(input_offset=0, output_offset=0, stride=(1, 1), padding=(1, 1), dilation=(1, 1), act_min=-128,
                act_max=127, in_dims=(1, 3, 3, 2), filter_dims=(1, 3, 3, 2), out_dims=(1, 3, 3, 2), output_stride=0)
    arrays = dict(weights=np.ones(18, np.int8), bias=np.zeros(2, np.int32),
                  multiplier=np.full(2, 2**30, np.int32), shift=np.zeros(2, np.int32))
    x = np.zeros(18, np.int8)
    run_conv(c, KernelCall("mcu_depthwise_conv_3x3_s8_fast", "", "t", base, arrays), x)
    for change in (dict(dilation=(2, 1)), dict(stride=(0, 1)), dict(filter_dims=(1, 2, 2, 2)),
                   dict(out_dims=(1, 3, 3, 4)), dict(input_offset=-128), dict(output_stride=1)):
        with pytest.raises(AssertionError):
            run_conv(c, KernelCall("mcu_depthwise_conv_3x3_s8_fast", "", "t", {**base, **change}, arrays), x)
    # beyond mcu_requantize_fast: a left shift, a shift past -31, a bias leaving no room for 9 taps below 2^29
    for name, value in (("shift", 1), ("shift", -32), ("bias", 2**29 - 2**18), ("bias", -(2**29) + 2**18)):
        bad = {**arrays, name: arrays[name].copy()}
        bad[name][1] = value
        with pytest.raises(AssertionError):
            run_conv(c, KernelCall("mcu_depthwise_conv_3x3_s8_fast", "", "t", base, bad), x)


@st.composite
def conv_transpose_cases(draw):
    n, h, w = draw(st.integers(1, 2)), draw(st.integers(1, 6)), draw(st.integers(1, 6))
    cin, cout = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw, dh, dw = (draw(st.integers(1, 3)) for _ in range(4))
    # any crop of the full scattered output, and output_padding past its end (rows that get only the bias)
    full_h, full_w = (h - 1) * sh + dh * (kh - 1) + 1, (w - 1) * sw + dw * (kw - 1) + 1
    ph, pw = draw(st.integers(0, full_h - 1)), draw(st.integers(0, full_w - 1))
    oh, ow = draw(st.integers(1, full_h - ph + sh - 1)), draw(st.integers(1, full_w - pw + sw - 1))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    mult, shift = quant.quantize_multipliers([draw(real_multipliers()) for _ in range(cout)])
    lo, hi = draw(activation())
    params = dict(
        input_offset=draw(st.integers(-127, 128)),
        output_offset=draw(st.integers(-128, 127)),
        stride=(sh, sw),
        padding=(ph, pw),
        dilation=(dh, dw),
        act_min=lo,
        act_max=hi,
        in_dims=(n, h, w, cin),
        filter_dims=(cout, kh, kw, cin),
        out_dims=(n, oh, ow, cout),
    )
    params["output_stride"], offset = output_stride(draw, cout)
    arrays = dict(
        weights=rng.integers(-127, 128, (cout, kh, kw, cin)).astype(np.int8),
        bias=rng.integers(-(2**20), 2**20, cout).astype(np.int32),
        multiplier=mult,
        shift=shift,
    )
    return KernelCall("mcu_conv_transpose_s8", "", "t", params, arrays), int8_arrays(draw, n * h * w * cin), offset


@SETTINGS
@given(conv_transpose_cases())
def test_conv_transpose_s8(c, case):
    call, x, offset = case
    check_stored(call, [x], output_buffer(call, offset), offset, run_conv(c, call, x, offset))


@SETTINGS
@given(st.data())
def test_fully_connected_s8(c, data):
    ffi, lib = c
    rows, depth, out_f = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 70)), data.draw(st.integers(1, 9))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    mult, shift = quant.quantize_multipliers([data.draw(real_multipliers()) for _ in range(out_f)])
    lo, hi = data.draw(activation())
    call = KernelCall(
        "mcu_fully_connected_s8",
        "",
        "t",
        dict(
            input_offset=data.draw(st.integers(-127, 128)),
            output_offset=data.draw(st.integers(-128, 127)),
            act_min=lo,
            act_max=hi,
            rows=rows,
            depth=depth,
            out_features=out_f,
        ),
        dict(
            weights=rng.integers(-127, 128, (out_f, depth)).astype(np.int8),
            bias=rng.integers(-(2**20), 2**20, out_f).astype(np.int32),
            multiplier=mult,
            shift=shift,
        ),
    )
    x = int8_arrays(data.draw, rows * depth)
    p, a = call.params, call.arrays
    params = ffi.new(
        "mcu_fc_params *",
        {"input_offset": p["input_offset"], "output_offset": p["output_offset"], "activation": {"min": lo, "max": hi}},
    )
    c_mult, c_shift = arr(ffi, "int32_t", mult), arr(ffi, "int32_t", shift)  # kept alive: the struct only points
    q = ffi.new("mcu_per_channel_quant *", {"multiplier": c_mult, "shift": c_shift})
    dims = [
        ffi.new("mcu_dims *", d)
        for d in (
            {"n": rows, "h": 1, "w": 1, "c": depth},
            {"n": out_f, "h": 1, "w": 1, "c": depth},
            {"n": rows, "h": 1, "w": 1, "c": out_f},
        )
    ]
    out = np.zeros(rows * out_f, np.int8)
    assert (
        lib.mcu_fully_connected_s8(
            ffi.NULL,
            params,
            q,
            dims[0],
            ptr(ffi, x),
            dims[1],
            arr(ffi, "int8_t", a["weights"]),
            arr(ffi, "int32_t", a["bias"]),
            dims[2],
            ptr(ffi, out),
        )
        == 0
    )
    check(call, [x], out)


@SETTINGS
@given(st.data(), st.sampled_from(["mcu_max_pool_s8", "mcu_avg_pool_s8"]))
def test_pool_s8(c, data, kernel):
    ffi, lib = c
    n, h, w, ch = (data.draw(st.integers(1, k)) for k in (2, 7, 7, 4))
    kh, kw = data.draw(st.integers(1, h)), data.draw(st.integers(1, w))
    sh, sw = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
    pt, pl = data.draw(st.integers(0, kh - 1)), data.draw(st.integers(0, kw - 1))
    pb, pr = data.draw(st.integers(0, kh - 1)), data.draw(st.integers(0, kw - 1))
    oh, ow = (h + pt + pb - kh) // sh + 1, (w + pl + pr - kw) // sw + 1
    lo, hi = data.draw(activation())
    include = data.draw(st.integers(0, 1)) if kernel == "mcu_avg_pool_s8" else 0
    params = dict(
        kernel=(kh, kw),
        stride=(sh, sw),
        dilation=(1, 1),
        padding=(pt, pl),
        pad_end=(pb, pr),
        count_include_pad=include,
        pad_value=data.draw(st.integers(-128, 127)),
        act_min=lo,
        act_max=hi,
        in_dims=(n, h, w, ch),
        out_dims=(n, oh, ow, ch),
    )
    params["output_stride"], offset = output_stride(data.draw, ch)
    call = KernelCall(kernel, "", "t", params)
    x = int8_arrays(data.draw, n * h * w * ch)
    cp = ffi.new(
        "mcu_pool_params *",
        {
            "kernel": dict(zip("hw", (kh, kw))),
            "stride": dict(zip("hw", (sh, sw))),
            "padding": dict(zip("hw", (pt, pl))),
            "pad_end": dict(zip("hw", (pb, pr))),
            "dilation": {"h": 1, "w": 1},
            "count_include_pad": include,
            "pad_value": params["pad_value"],
            "activation": {"min": lo, "max": hi},
            "output_stride": params["output_stride"],
        },
    )
    dims = [ffi.new("mcu_dims *", dict(zip("nhwc", params[k]))) for k in ("in_dims", "out_dims")]
    before = output_buffer(call, offset)
    out = before.copy()
    assert getattr(lib, kernel)(ffi.NULL, cp, dims[0], ptr(ffi, x), dims[1], ptr(ffi, out[offset:])) == 0
    check_stored(call, [x], before, offset, out)


@SETTINGS
@given(st.data())
def test_reduce_s8(c, data):
    ffi, lib = c
    in_dims = tuple(data.draw(st.integers(1, k)) for k in (2, 6, 6, 5))
    reduced = tuple(data.draw(st.lists(st.integers(0, 1), min_size=4, max_size=4)))
    op = data.draw(st.sampled_from([REDUCE_MEAN, REDUCE_MAX, REDUCE_MIN]))
    mult, shift = quant.quantize_multiplier(data.draw(real_multipliers()))
    lo, hi = data.draw(activation())
    kept = [1 if r else d for d, r in zip(in_dims, reduced)]
    order = data.draw(st.permutations(range(4)))  # the results may land in any axis order of the output
    out_strides = [0] * 4
    step = 1
    for k in reversed(order):
        out_strides[k] = 0 if reduced[k] else step
        step *= kept[k]
    params = dict(
        op=op,
        input_offset=data.draw(st.integers(-127, 128)),
        output_offset=data.draw(st.integers(-128, 127)),
        multiplier=mult,
        shift=shift,
        divisor=data.draw(st.integers(1, 300)),
        act_min=lo,
        act_max=hi,
        in_dims=in_dims,
        reduced=reduced,
        out_strides=tuple(out_strides),
    )
    call = KernelCall("mcu_reduce_s8", "", "t", params)
    x = int8_arrays(data.draw, int(np.prod(in_dims)))
    scalars = {k: params[k] for k in ("op", "input_offset", "output_offset", "multiplier", "shift", "divisor")}
    cp = ffi.new("mcu_reduce_params *", {**scalars, "activation": {"min": lo, "max": hi}})
    shape = ffi.new("mcu_reduce_shape *", {k: list(params[k]) for k in ("in_dims", "reduced", "out_strides")})
    out = np.zeros(int(np.prod(kept)), np.int8)
    assert lib.mcu_reduce_s8(ffi.NULL, cp, shape, ptr(ffi, x), ptr(ffi, out)) == 0
    check(call, [x], out)


def quant_params(data):
    scale = data.draw(st.one_of(st.floats(1e-6, 1e-3), st.floats(1e-3, 1.0), st.floats(1.0, 1e3)))
    return QuantParams.per_tensor(scale, data.draw(st.integers(-128, 127)))


def broadcast_operand(data, out_dims):
    """An input of the output box: each axis kept or broadcast (stride 0), stored in any axis order."""
    kept = [d if data.draw(st.booleans()) else 1 for d in out_dims]
    strides, step = [0] * 4, 1
    for k in reversed(data.draw(st.permutations(range(4)))):
        strides[k] = step if kept[k] > 1 else 0
        step *= kept[k]
    return tuple(strides), int8_arrays(data.draw, step)


@SETTINGS
@given(st.data(), st.sampled_from(["add", "sub", "mul"]))
def test_add_sub_mul_s8_broadcast(c, data, op):
    ffi, lib = c
    dims = tuple(data.draw(st.integers(1, k)) for k in (2, 4, 5, 6))
    if data.draw(st.booleans()):
        dims = (1, 1, 1, data.draw(st.integers(1, 64)))  # the flat same-shape path
    (s1, a), (s2, b) = broadcast_operand(data, dims), broadcast_operand(data, dims)
    lo, hi = data.draw(activation())
    qa, qb, qy = quant_params(data), quant_params(data), quant_params(data)
    if op == "mul":
        # s1 * s2 / s_out from underflow to far above 1 (left shifts that saturate)
        qy = QuantParams.per_tensor(qa.s * qb.s / data.draw(real_multipliers()), qy.zp)
        params, kernel = mul_params(qa, qb, qy), "mul"
    else:
        params, kernel = dict(add_params(qa, qb, qy), subtract=int(op == "sub")), "add"
    shape = dict(out_dims=dims, in1_strides=s1, in2_strides=s2)
    call = KernelCall(f"mcu_{kernel}_s8", "", "t", dict(params, **shape, operands=(0, 1), act_min=lo, act_max=hi))
    cp = ffi.new(f"mcu_{kernel}_params *", params)
    cp.activation.min, cp.activation.max = lo, hi
    cshape = ffi.new("mcu_broadcast_shape *", {k: list(v) for k, v in shape.items()})
    x1 = a.copy()
    contiguous = tuple(int(np.prod(dims[k + 1 :])) if dims[k] > 1 else 0 for k in range(4))
    in_place = s1 == contiguous and data.draw(st.booleans())  # output over input 1, as the memory planner may do
    out = x1 if in_place else np.zeros(int(np.prod(dims)), np.int8)
    assert getattr(lib, f"mcu_{kernel}_s8")(ffi.NULL, cp, cshape, ptr(ffi, x1), ptr(ffi, b), ptr(ffi, out)) == 0
    check(call, [a, b], out)


@SETTINGS
@given(st.data())
def test_prelu_s8(c, data):
    ffi, lib = c
    dims = tuple(data.draw(st.integers(1, k)) for k in (2, 4, 5, 6))
    if data.draw(st.booleans()):
        dims = (1, 1, 1, data.draw(st.integers(1, 64)))
    s1 = tuple(int(np.prod(dims[k + 1 :])) if dims[k] > 1 else 0 for k in range(4))  # the input: output's layout
    s2, alpha = broadcast_operand(data, dims)
    x = int8_arrays(data.draw, int(np.prod(dims)))
    qx, qa = quant_params(data), quant_params(data)
    # both multipliers from underflow to far above 1 (left shifts that saturate)
    qy = QuantParams.per_tensor(qx.s / data.draw(real_multipliers()), data.draw(st.integers(-128, 127)))
    params = prelu_params(qx, qa, qy)
    shape = dict(out_dims=dims, in1_strides=s1, in2_strides=s2)
    call = KernelCall("mcu_prelu_s8", "", "t", dict(params, **shape, operands=(0, -1)), dict(constant=alpha))
    cp = ffi.new("mcu_prelu_params *", params)
    cshape = ffi.new("mcu_broadcast_shape *", {k: list(v) for k, v in shape.items()})
    x1 = x.copy()
    out = x1 if data.draw(st.booleans()) else np.zeros(x.size, np.int8)  # in place, as the memory planner may do
    assert lib.mcu_prelu_s8(ffi.NULL, cp, cshape, ptr(ffi, x1), ptr(ffi, alpha), ptr(ffi, out)) == 0
    check(call, [x], out)


@SETTINGS
@given(st.data())
def test_softmax_s8(c, data):
    ffi, lib = c
    rows, depth = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 300))
    scale = data.draw(st.one_of(st.floats(1e-3, 0.05), st.floats(0.05, 2.0), st.floats(2.0, 60.0)))
    m, ls, dmin = softmax_params(scale)
    params = dict(rows=rows, depth=depth, input_multiplier=m, input_left_shift=ls, diff_min=dmin)
    call = KernelCall("mcu_softmax_s8", "", "t", params)
    x = int8_arrays(data.draw, rows * depth)
    cp = ffi.new("mcu_softmax_params *", {"input_multiplier": m, "input_left_shift": ls, "diff_min": dmin})
    out = np.zeros(rows * depth, np.int8)
    assert lib.mcu_softmax_s8(ffi.NULL, cp, ptr(ffi, x), rows, depth, ptr(ffi, out)) == 0
    check(call, [x], out)


@SETTINGS
@given(st.data())
def test_transpose_and_clamp_s8(c, data):
    ffi, lib = c
    rank = data.draw(st.integers(1, 6))
    dims = tuple(data.draw(st.integers(1, 4)) for _ in range(rank))
    perm = tuple(data.draw(st.permutations(range(rank))))
    x = int8_arrays(data.draw, int(np.prod(dims)))
    call = transpose_call("t", "x", "y", dims, perm)
    out = np.zeros(x.size, np.int8)
    cp = ffi.new("mcu_transpose_params *", {k: call.params[k] for k in ("in_dims", "perm")})
    assert lib.mcu_transpose_s8(ffi.NULL, cp, ptr(ffi, x), ptr(ffi, out)) == 0
    check(call, [x], out)
    assert_bit_exact(out, np.transpose(x.reshape(dims), perm).ravel())  # numpy's own transpose as the oracle
    lo, hi = data.draw(activation())
    clamp = KernelCall("mcu_clamp_s8", "", "t", dict(act_min=lo, act_max=hi, size=x.size))
    inplace = x.copy()
    assert (
        lib.mcu_clamp_s8(
            ffi.NULL, ffi.new("mcu_activation *", {"min": lo, "max": hi}), ptr(ffi, inplace), x.size, ptr(ffi, inplace)
        )
        == 0
    )
    check(clamp, [x], inplace)


@SETTINGS
@given(st.data())
def test_slice_s8_boxes_and_broadcasts(c, data):
    """mcu_slice_s8 on a random box (any rank up to 6, negative steps) of a tensor, then a broadcast of it along
    a new leading axis (stride 0), against numpy's own slicing and broadcast_to. Rank 4 would be NHWC in memory,
    which the model-level tests cover."""
    ffi, lib = c
    rank = data.draw(st.sampled_from([1, 2, 3, 5]))
    shape = tuple(data.draw(st.integers(1, 4)) for _ in range(rank))
    bounds = []
    for d in shape:
        step = data.draw(st.sampled_from([1, 1, 2, -1, -2]))
        start = data.draw(st.integers(0, d - 1))
        stop = data.draw(st.integers(start + 1, d)) if step > 0 else data.draw(st.integers(-1, start - 1))
        bounds.append((start, stop, step))
    x = int8_arrays(data.draw, int(np.prod(shape)))
    expected = x.reshape(shape)[tuple(slice(a, None if b < 0 else b, st_) for a, b, st_ in bounds)]
    repeat = data.draw(st.integers(1, 3))
    call = slice_call("s", "x", "y", shape, bounds)
    loops = [(repeat, [0])] + [(d, [s_]) for d, s_ in zip(call.params["out_dims"], call.params["strides"])]
    call = strided_copy_call("s", "x", "y", x.size, call.params["first"], loops)
    out = np.zeros(repeat * expected.size, np.int8)
    cp = ffi.new("mcu_slice_params *", dict(call.params))
    assert lib.mcu_slice_s8(ffi.NULL, cp, ptr(ffi, x), ptr(ffi, out)) == 0
    check(call, [x], out)
    assert_bit_exact(out, np.broadcast_to(expected, (repeat, *expected.shape)).ravel())


def test_c_kernels_check_their_arguments(c):
    ffi, lib = c
    dims = ffi.new("mcu_dims *", {"n": 1, "h": 2, "w": 2, "c": 3})
    bad_filter = ffi.new("mcu_dims *", {"n": 2, "h": 1, "w": 1, "c": 4})  # channel count differs from the input
    out_dims = ffi.new("mcu_dims *", {"n": 1, "h": 2, "w": 2, "c": 2})
    params = ffi.new(
        "mcu_conv_params *",
        {"stride": {"h": 1, "w": 1}, "dilation": {"h": 1, "w": 1}, "activation": {"min": -128, "max": 127}},
    )
    buf = ffi.new("int16_t[]", 64)
    ctx = ffi.new("mcu_context *", {"buf": buf, "size": 128})
    x, w, y = ffi.new("int8_t[]", 12), ffi.new("int8_t[]", 8), ffi.new("int8_t[]", 8)
    mult, shift = ffi.new("int32_t[]", 2), ffi.new("int32_t[]", 2)
    q = ffi.new("mcu_per_channel_quant *", {"multiplier": mult, "shift": shift})
    assert lib.mcu_conv_s8(ctx, params, q, dims, x, bad_filter, w, ffi.NULL, out_dims, y) == lib.MCU_STATUS_ARG_ERROR
    assert int(lib.MCU_STATUS_ARG_ERROR) == -1 and int(lib.MCU_STATUS_OK) == 0


@SETTINGS
@given(st.data())
def test_requantize_s8(c, data):
    ffi, lib = c
    size = data.draw(st.integers(1, 64))
    mult, shift = quant.quantize_multiplier(data.draw(real_multipliers()))
    params = dict(
        input_offset=data.draw(st.integers(-127, 128)),
        output_offset=data.draw(st.integers(-128, 127)),
        multiplier=mult,
        shift=shift,
        size=size,
    )
    call = KernelCall("mcu_requantize_s8", "", "t", params)
    x = int8_arrays(data.draw, size)
    cp = ffi.new(
        "mcu_requantize_params *", {k: params[k] for k in ("input_offset", "output_offset", "multiplier", "shift")}
    )
    out = x.copy()  # in place
    assert lib.mcu_requantize_s8(ffi.NULL, cp, ptr(ffi, out), size, ptr(ffi, out)) == 0
    check(call, [x], out)


@SETTINGS
@given(st.data())
def test_pad_s8(c, data):
    ffi, lib = c
    in_dims = tuple(data.draw(st.integers(1, 4)) for _ in range(4))
    before = tuple(data.draw(st.integers(-(d - 1), 3)) for d in in_dims)  # negative: crops
    out_dims = tuple(max(1, d + b + data.draw(st.integers(-1, 3))) for d, b in zip(in_dims, before))
    mult, shift = quant.quantize_multiplier(data.draw(real_multipliers()))
    params = dict(
        in_dims=in_dims,
        out_dims=out_dims,
        before=before,
        mode=data.draw(st.sampled_from([0, 1, 2, 3])),
        pad_value=data.draw(st.integers(-128, 127)),
        copy=data.draw(st.integers(0, 1)),
        input_offset=data.draw(st.integers(-127, 128)),
        output_offset=data.draw(st.integers(-128, 127)),
        multiplier=mult,
        shift=shift,
    )
    if params["mode"] == 3:  # wrap: something must be kept of every axis after the crops (check_pad)
        kept = [d - max(-b, 0) - max(b + d - o, 0) for d, b, o in zip(in_dims, before, out_dims)]
        params["mode"] = 3 if min(kept) >= 1 else 0
    call = KernelCall("mcu_pad_s8", "", "t", params)
    x = int8_arrays(data.draw, int(np.prod(in_dims)))
    requant = {k: params[k] for k in ("input_offset", "output_offset", "multiplier", "shift")}
    fields = {k: params[k] for k in ("in_dims", "out_dims", "before", "mode", "pad_value", "copy")}
    cp = ffi.new("mcu_pad_params *", {**fields, "requantize": requant})
    out = np.zeros(int(np.prod(out_dims)), np.int8)
    assert lib.mcu_pad_s8(ffi.NULL, cp, ptr(ffi, x), ptr(ffi, out)) == 0
    check(call, [x], out)


@SETTINGS
@given(st.data(), st.sampled_from(["mcu_resize_nearest_s8", "mcu_resize_bilinear_s8"]))
def test_resize_s8(c, data, kernel):
    ffi, lib = c
    n, ch, h, w = (data.draw(st.integers(1, k)) for k in (2, 4, 6, 6))
    oh, ow = data.draw(st.integers(1, 9)), data.draw(st.integers(1, 9))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))

    def table(out_len, in_len):
        if kernel == "mcu_resize_nearest_s8":
            return rng.integers(0, in_len, out_len).astype(np.int16)
        taps = rng.integers(0, in_len, (out_len, 2))
        weights = rng.choice(np.array([0, 1, 1023, 1024, 2047, 2048]), out_len)  # the ends and the ties
        weights = np.where(rng.random(out_len) < 0.5, weights, rng.integers(0, 2049, out_len))
        return np.column_stack([taps, weights]).astype(np.int16).ravel()

    y_table, x_table = table(oh, h), table(ow, w)
    params = dict(batches=n, channels=ch, in_size=(h, w), out_size=(oh, ow))
    call = KernelCall(kernel, "", "t", params, dict(y_table=y_table, x_table=x_table))
    x = int8_arrays(data.draw, n * h * w * ch)
    cp = ffi.new(
        "mcu_resize_params *",
        {"batches": n, "channels": ch, "in_size": {"h": h, "w": w}, "out_size": {"h": oh, "w": ow}},
    )
    out = np.zeros(n * oh * ow * ch, np.int8)
    ys, xs = arr(ffi, "int16_t", y_table), arr(ffi, "int16_t", x_table)
    assert getattr(lib, kernel)(ffi.NULL, cp, ys, xs, ptr(ffi, x), ptr(ffi, out)) == 0
    check(call, [x], out)
    ys[0] = h  # a row outside the input is refused before anything is read
    assert getattr(lib, kernel)(ffi.NULL, cp, ys, xs, ptr(ffi, x), ptr(ffi, out)) == lib.MCU_STATUS_ARG_ERROR


@SETTINGS
@given(st.data())
def test_norm_s8(c, data):
    """mcu_norm_s8 == its numpy spec, in place half the time: constant groups (variance 0, the epsilon alone),
    tiny and huge epsilons, saturated inputs, one and many channels per group."""
    from mcucompile.ops.norm import FRACTION_BITS

    ffi, lib = c
    n, positions = data.draw(st.integers(1, 2)), data.draw(st.integers(1, 40))
    groups, k = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 5))
    size = n * positions * groups * k
    x = int8_arrays(data.draw, size)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    out_shift = data.draw(st.integers(FRACTION_BITS + 1, 40))
    lo, hi = data.draw(activation())
    params = dict(batches=n, positions=positions, groups=groups, group_channels=k,
                  eps_term=data.draw(st.sampled_from([1, 7, 10**6, 2**61])), out_shift=out_shift,
                  output_offset=data.draw(st.integers(-128, 127)), act_min=lo, act_max=hi)  # fmt: skip
    gain = rng.integers(-(2**30), 2**30, groups * k).astype(np.int32) >> data.draw(st.integers(0, 24))
    bias = rng.integers(-(2**40), 2**40, groups * k).astype(np.int64)
    call = KernelCall("mcu_norm_s8", "", "t", params, dict(gain=gain, bias=bias))
    cp = ffi.new("mcu_norm_params *", {**{k_: v for k_, v in params.items() if not k_.startswith("act")},
                                        "activation": {"min": lo, "max": hi}})  # fmt: skip
    in_place = data.draw(st.booleans())
    out = x.copy() if in_place else np.zeros(size, np.int8)
    source = out if in_place else x
    assert lib.mcu_norm_s8(ffi.NULL, cp, arr(ffi, "int32_t", gain), arr(ffi, "int64_t", bias), ptr(ffi, source),
                           ptr(ffi, out)) == 0  # fmt: skip
    check(call, [x], out)


@SETTINGS
@given(st.data(), st.sampled_from(["Max", "Min", "Greater", "GreaterOrEqual", "Equal"]))
def test_compare_s8_broadcast(c, data, op):
    """Max/Min/comparisons of two rescaled inputs; independently of the reference, a comparison agrees with the
    float comparison of the dequantized inputs wherever they differ by more than the rescaling's resolution."""
    ffi, lib = c
    dims = tuple(data.draw(st.integers(1, k)) for k in (2, 4, 5, 6))
    if data.draw(st.booleans()):
        dims = (1, 1, 1, data.draw(st.integers(1, 64)))
    (s1, a), (s2, b) = broadcast_operand(data, dims), broadcast_operand(data, dims)
    qa, qb, qy = quant_params(data), quant_params(data), quant_params(data)
    if data.draw(st.booleans()):
        qb = QuantParams.per_tensor(qa.s, qb.zp)  # TFLite's MAXIMUM case: one scale
    lo, hi = data.draw(activation()) if op in ("Max", "Min") else (-128, 127)
    params = dict(add_params(qa, qb, qy), op=COMPARE_CODES[op], subtract=0)
    shape = dict(out_dims=dims, in1_strides=s1, in2_strides=s2)
    call = KernelCall("mcu_compare_s8", "", "t", dict(params, **shape, operands=(0, 1), act_min=lo, act_max=hi))
    rescale = {k: v for k, v in params.items() if k != "op"}
    cp = ffi.new("mcu_compare_params *", {"rescale": rescale, "op": params["op"]})
    cp.rescale.activation.min, cp.rescale.activation.max = lo, hi
    cshape = ffi.new("mcu_broadcast_shape *", {k: list(v) for k, v in shape.items()})
    out = np.zeros(int(np.prod(dims)), np.int8)
    assert lib.mcu_compare_s8(ffi.NULL, cp, cshape, ptr(ffi, a), ptr(ffi, b), ptr(ffi, out)) == 0
    check(call, [a, b], out)
    if op in ("Greater", "GreaterOrEqual"):
        ga, gb = broadcast_operands(call, [a, b])
        fa, fb = (ga - qa.zp) * np.float64(qa.s), (gb - qb.zp) * np.float64(qb.s)
        clear = np.abs(fa - fb) > 2.0**-17 * max(qa.s, qb.s)
        assert np.array_equal(out[clear], (fa > fb)[clear].astype(np.int8))


@SETTINGS
@given(st.data())
def test_where_s8_broadcast(c, data):
    """Where: each element requantized from the branch its condition picks, every operand broadcast; against the
    requantization of numpy's own where."""
    ffi, lib = c
    dims = tuple(data.draw(st.integers(1, k)) for k in (2, 4, 5, 6))
    (sc, cond), (st_, xt), (sf, xf) = (broadcast_operand(data, dims) for _ in range(3))
    cond = (cond > 0).astype(np.int8)
    branches = {}
    for role, strides in (("when_true", st_), ("when_false", sf)):
        mult, shift = quant.quantize_multiplier(data.draw(real_multipliers()))
        branches[role] = dict(dims=dims, cond_strides=sc, value_strides=strides, multiplier=mult, shift=shift,
                              input_offset=data.draw(st.integers(-127, 128)),
                              output_offset=data.draw(st.integers(-128, 127)))  # fmt: skip
    call = KernelCall("mcu_where_s8", "", "t", dict(operands=(0, 1, 2), **branches))
    scalars = ("input_offset", "output_offset", "multiplier", "shift")
    cp = ffi.new("mcu_where_params *", {role: {k: r[k] for k in scalars} for role, r in branches.items()})
    shapes = [ffi.new("mcu_broadcast_shape *", {"out_dims": list(dims), "in1_strides": list(sc),
                                                "in2_strides": list(branches[r]["value_strides"])})
              for r in ("when_true", "when_false")]  # fmt: skip
    out = np.zeros(int(np.prod(dims)), np.int8)
    args = (ptr(ffi, cond), ptr(ffi, xt), ptr(ffi, xf), ptr(ffi, out))
    assert lib.mcu_where_s8(ffi.NULL, cp, *shapes, *args) == 0
    check(call, [cond, xt, xf], out)
    values = {}
    for role, x in (("when_true", xt), ("when_false", xf)):
        gathered = broadcast_gather(x, dims, branches[role]["value_strides"])
        values[role] = requantize_values(gathered, *(branches[role][k] for k in scalars))
    expected = np.where(broadcast_gather(cond, dims, sc) != 0, values["when_true"], values["when_false"])
    assert np.array_equal(out, expected)
