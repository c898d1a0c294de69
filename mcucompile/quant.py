"""Quantization maths: scales and zero points, TFLite's multiplier encoding, and its integer requantization.

The integer functions here are the numpy twins of `runtime_c/include/mcu_nn_support.h`; every kernel
reference in `ops/` builds on them, so C and numpy agree bit for bit.
"""

from __future__ import annotations

import math

import numpy as np

from .ir import QuantParams

INT8_MIN, INT8_MAX = -128, 127
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def tflite_round(x: float) -> int:
    """std::round: halves away from zero (Python's round() is half-to-even)."""
    return int(math.floor(abs(x) + 0.5)) * (1 if x >= 0 else -1)


def round_half_away(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def quantize_multiplier(real: float) -> tuple[int, int]:
    """real -> (Q31 M, shift) with real ~= M * 2^(shift - 31); shift > 0 shifts left (TFLite QuantizeMultiplier)."""
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    q_fixed = tflite_round(q * (1 << 31))
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return int(q_fixed), int(shift)


def quantize_multipliers(reals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pairs = [quantize_multiplier(float(r)) for r in np.asarray(reals, np.float64).ravel()]
    return np.array([p[0] for p in pairs], np.int32), np.array([p[1] for p in pairs], np.int32)


def choose_qparams(lo: float, hi: float) -> QuantParams:
    """Asymmetric int8 parameters for the float range [lo, hi], widened to hold 0 exactly."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if hi - lo < 1e-8:
        hi = lo + 1e-8 if lo < 0 else 1e-8  # a constant-zero tensor still needs a valid scale
    scale = np.float32((hi - lo) / 255.0)
    zp = int(np.clip(tflite_round(INT8_MIN - lo / float(scale)), INT8_MIN, INT8_MAX))
    return QuantParams.per_tensor(float(scale), zp)


def quantize_weights_per_channel(w: np.ndarray, axis: int = 0) -> tuple[np.ndarray, QuantParams]:
    """Symmetric int8 in [-127, 127] per output channel along `axis`, zero point 0."""
    moved = np.moveaxis(np.asarray(w, np.float64), axis, 0)
    amax = np.abs(moved.reshape(moved.shape[0], -1)).max(axis=1)
    scale = np.where(amax > 0, amax / 127.0, 1.0).astype(np.float32)
    shape = [1] * moved.ndim
    shape[0] = -1
    q = np.clip(round_half_away(moved / scale.astype(np.float64).reshape(shape)), -127, 127)
    q = np.moveaxis(q, 0, axis).astype(np.int8)
    return q, QuantParams(scale, np.zeros_like(scale, dtype=np.int32), axis)


def quantize_bias(b: np.ndarray, input_scale: float, weight_scale: np.ndarray) -> np.ndarray:
    """int32 bias with scale s_in * s_w[c] (float32 scales widened to double), zero point 0."""
    bias_scale = np.float64(np.float32(input_scale)) * weight_scale.astype(np.float64)
    q = round_half_away(np.asarray(b, np.float64) / bias_scale)
    return np.clip(q, INT32_MIN, INT32_MAX).astype(np.int32)


def fold_input_offset(
    rows: np.ndarray, bias: np.ndarray | None, input_offset: int, *, margin: int, limit: int
) -> np.ndarray | None:
    """bias + input_offset * (the sum of each row of the int8 weights, one row per output) as int32, so a kernel can
    multiply raw int8 values; None unless every folded bias stays within limit - margin of 0, `margin` bounding
    what the raw products can add to it (the fast kernels' accumulator range)."""
    w = np.asarray(rows).astype(np.int64)
    b = np.zeros(w.shape[0], np.int64) if bias is None else bias.astype(np.int64)
    folded = b + input_offset * w.sum(axis=1)
    if np.abs(folded).max(initial=0) >= limit - margin:
        return None
    return folded.astype(np.int32)


def quantize(x: np.ndarray, q: QuantParams) -> np.ndarray:
    """float -> int8 with halves away from zero and saturation (NaN -> the zero point)."""
    v = np.nan_to_num(np.asarray(x, np.float64) / q.s, nan=0.0, posinf=1e9, neginf=-1e9)
    return np.clip(round_half_away(v) + q.zp, INT8_MIN, INT8_MAX).astype(np.int8)


def dequantize(x: np.ndarray, q: QuantParams) -> np.ndarray:
    return ((x.astype(np.float32) - np.float32(q.zp)) * np.float32(q.s)).astype(np.float32)


def activation_range(clamp: tuple[float, float] | None, q: QuantParams) -> tuple[int, int]:
    """Quantized clamp bounds of a fused activation (TFLite CalculateActivationRangeQuantized, float32 division)."""
    if clamp is None:
        return INT8_MIN, INT8_MAX
    lo, hi = clamp
    scale = np.float32(q.s)
    qmin = INT8_MIN if lo == -math.inf else max(INT8_MIN, q.zp + tflite_round(float(np.float32(lo) / scale)))
    qmax = INT8_MAX if hi == math.inf else min(INT8_MAX, q.zp + tflite_round(float(np.float32(hi) / scale)))
    return int(qmin), int(max(qmin, qmax))


# --- integer requantization, the numpy twin of mcu_nn_support.h (arrays of int64 holding int32 values) ---


def saturating_rounding_doubling_high_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = np.asarray(a, np.int64), np.asarray(b, np.int64)
    ab = a * b
    nudge = np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    num = ab + nudge
    r = np.where(num >= 0, num >> 31, -((-num) >> 31))  # C division truncates toward zero
    return np.where((a == INT32_MIN) & (b == INT32_MIN), INT32_MAX, r)


def rounding_divide_by_pot(x: np.ndarray, exponent: np.ndarray) -> np.ndarray:
    """x / 2^exponent, halves away from zero (gemmlowp RoundingDivideByPOT)."""
    x, e = np.asarray(x, np.int64), np.asarray(exponent, np.int64)
    mask = (np.int64(1) << e) - 1
    rem = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> e) + (rem > threshold)


def multiply_by_quantized_multiplier(x: np.ndarray, multiplier: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """TFLite MultiplyByQuantizedMultiplier (double rounding); the left shift saturates to int32."""
    shift = np.asarray(shift, np.int64)
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    shifted = np.clip(np.asarray(x, np.int64) << left, INT32_MIN, INT32_MAX)
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(shifted, multiplier), right)


def requantize_to_int8(
    acc: np.ndarray, multiplier: np.ndarray, shift: np.ndarray, output_offset: int, act_min: int, act_max: int
) -> np.ndarray:
    """The common tail of conv, fully connected and mean: rescale the int32 accumulator, add the zero point, clamp."""
    out = multiply_by_quantized_multiplier(acc, multiplier, shift) + output_offset
    return np.clip(out, act_min, act_max).astype(np.int8)
