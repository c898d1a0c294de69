/* int8 softmax, TFLite's fixed-point algorithm (gemmlowp exp_on_negative_values, one_over_one_plus_x_for_x_in_0_1).
 * Refer to mcu_nn.h for details; the numpy twin is mcucompile/ops/softmax.py. */
#include "mcu_nn.h"

/* x * 2^exponent, saturated to int32 (gemmlowp SaturatingRoundingMultiplyByPOT with a positive exponent). */
static int32_t mcu_softmax_saturating_left_shift(int32_t x, int32_t exponent)
{
    const int32_t threshold = (int32_t)((INT64_C(1) << (31 - exponent)) - 1);
    if (x > threshold)
    {
        return INT32_MAX;
    }
    if (x < -threshold)
    {
        return INT32_MIN;
    }
    return (int32_t)((int64_t)x * (INT64_C(1) << exponent));
}

/* exp(a) for a in [-1/4, 0), all Q0.31: Taylor expansion around -1/8. */
static int32_t mcu_softmax_exp_quarter(int32_t a)
{
    const int32_t constant_term = 1895147668; /* exp(-1/8) */
    const int32_t one_third = 715827883;
    const int32_t x = a + (1 << 28);
    const int32_t x2 = mcu_doubling_high_mul(x, x);
    const int32_t x3 = mcu_doubling_high_mul(x2, x);
    const int32_t x4 = mcu_doubling_high_mul(x2, x2);
    const int32_t poly =
        mcu_divide_by_pot(mcu_doubling_high_mul(mcu_divide_by_pot(x4, 2) + x3, one_third) + x2, 1);
    return constant_term + mcu_doubling_high_mul(constant_term, x + poly);
}

/* exp(a) for a <= 0 in Q5.26; result Q0.31. */
static int32_t mcu_softmax_exp_on_negative_values(int32_t a)
{
    static const int32_t multipliers[7] = {1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242};
    const int32_t quarter = 1 << 24;
    const int32_t a_mod_quarter_minus_quarter = (a & (quarter - 1)) - quarter;
    int32_t result = mcu_softmax_exp_quarter(mcu_softmax_saturating_left_shift(a_mod_quarter_minus_quarter, 5));
    const int32_t remainder = a_mod_quarter_minus_quarter - a;
    for (int32_t k = 0; k < 7; k++)
    {
        if (remainder & (1 << (24 + k)))
        {
            result = mcu_doubling_high_mul(result, multipliers[k]); /* times exp(-2^(k-2)) */
        }
    }
    return a == 0 ? INT32_MAX : result;
}

/* 1 / (1 + a) for a in [0, 1), Q0.31, by three Newton-Raphson steps in Q2.29. */
static int32_t mcu_softmax_one_over_one_plus_x(int32_t a)
{
    const int64_t sum = (int64_t)a + INT32_MAX;
    const int32_t half_denominator = (int32_t)((sum + (sum >= 0 ? 1 : -1)) / 2);
    int32_t x = 1515870810 + mcu_doubling_high_mul(half_denominator, -1010580540); /* 48/17 - 32/17 d */
    for (int32_t i = 0; i < 3; i++)
    {
        const int32_t one_minus = (1 << 29) - mcu_doubling_high_mul(half_denominator, x);
        x = x + mcu_softmax_saturating_left_shift(mcu_doubling_high_mul(x, one_minus), 2);
    }
    return mcu_softmax_saturating_left_shift(x, 1);
}

/* The difference to the row maximum in Q5.26 (TFLite's MultiplyByQuantizedMultiplierGreaterThanOne); diff_min
 * keeps diff * 2^left_shift within int32, and 64-bit arithmetic keeps the shift itself defined for a shift of 31. */
static int32_t mcu_softmax_scale_diff(int32_t diff, const mcu_softmax_params *params)
{
    return mcu_doubling_high_mul((int32_t)((int64_t)diff * (INT64_C(1) << params->input_left_shift)),
                                 params->input_multiplier);
}

MCU_API mcu_status mcu_softmax_s8(const mcu_context *ctx,
                                  const mcu_softmax_params *params,
                                  const int8_t *input,
                                  int32_t rows,
                                  int32_t depth,
                                  int8_t *output)
{
    (void)ctx;
    if (depth <= 0 || depth > (1 << 19))
    {
        return MCU_STATUS_ARG_ERROR;
    }
    for (int32_t r = 0; r < rows; r++)
    {
        const int8_t *x = input + (int64_t)r * depth;
        int8_t *y = output + (int64_t)r * depth;
        int32_t max = x[0];
        for (int32_t i = 1; i < depth; i++)
        {
            max = x[i] > max ? x[i] : max;
        }
        int32_t sum = 0; /* Q12.19 */
        for (int32_t i = 0; i < depth; i++)
        {
            const int32_t diff = x[i] - max;
            if (diff >= params->diff_min)
            {
                const int32_t scaled = mcu_softmax_scale_diff(diff, params);
                sum += mcu_divide_by_pot(mcu_softmax_exp_on_negative_values(scaled), 12);
            }
        }
        /* sum >= 1.0 (the maximum contributes exp(0)), so it has at most 12 leading zeros. */
        int32_t headroom = 0;
        while (((uint32_t)sum << headroom) < UINT32_C(0x80000000))
        {
            headroom++;
        }
        const int32_t bits_over_unit = 12 - headroom;
        /* More than 256 near-equal maxima would need a shift beyond 31; stop there (the output is then -128). */
        const int32_t out_shift = bits_over_unit + 31 - 8 > 31 ? 31 : bits_over_unit + 31 - 8;
        const int32_t shifted_sum_minus_one = (int32_t)(((uint32_t)sum << headroom) - UINT32_C(0x80000000));
        const int32_t shifted_scale = mcu_softmax_one_over_one_plus_x(shifted_sum_minus_one);
        for (int32_t i = 0; i < depth; i++)
        {
            const int32_t diff = x[i] - max;
            int32_t q = -128;
            if (diff >= params->diff_min)
            {
                const int32_t scaled = mcu_softmax_scale_diff(diff, params);
                const int32_t e = mcu_softmax_exp_on_negative_values(scaled);
                q = mcu_divide_by_pot(mcu_doubling_high_mul(shifted_scale, e), out_shift) - 128;
            }
            y[i] = (int8_t)mcu_clamp(q, -128, 127);
        }
    }
    return MCU_STATUS_OK;
}
