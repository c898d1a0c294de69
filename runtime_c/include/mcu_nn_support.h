/*
 * mcu_nn support: TFLite's fixed-point requantization (double rounding, as in TFLite Micro's reference
 * kernels and CMSIS-NN's default build) and small helpers. Its numpy twin is mcucompile/quant.py.
 */
#ifndef MCU_NN_SUPPORT_H
#define MCU_NN_SUPPORT_H

#include <stdint.h>

#include "mcu_nn_types.h"

#ifndef MCU_API
#define MCU_API
#endif

#define MCU_CHECK(expr)                                                                                               \
    do                                                                                                                 \
    {                                                                                                                  \
        const mcu_status mcu_check_status_ = (expr);                                                                   \
        if (mcu_check_status_ != MCU_STATUS_OK)                                                                        \
        {                                                                                                              \
            return (int)mcu_check_status_;                                                                             \
        }                                                                                                              \
    } while (0)

static inline int32_t mcu_clamp(int32_t v, int32_t lo, int32_t hi)
{
    return v < lo ? lo : (v > hi ? hi : v);
}

/* Elements from one output pixel to the next for a params->output_stride field (0: dense, `channels`);
 * 0 if the stride is invalid (below `channels`), which the kernel reports as an argument error. */
static inline int32_t mcu_pixel_stride(int32_t output_stride, int32_t channels)
{
    if (output_stride == 0)
    {
        return channels;
    }
    return output_stride >= channels ? output_stride : 0;
}

/* gemmlowp SaturatingRoundingDoublingHighMul: (a * b * 2 + 2^31) / 2^32, with the one overflow case saturated. */
static inline int32_t mcu_doubling_high_mul(int32_t a, int32_t b)
{
    if (a == INT32_MIN && b == INT32_MIN)
    {
        return INT32_MAX;
    }
    const int64_t ab = (int64_t)a * (int64_t)b;
    const int64_t nudge = ab >= 0 ? (INT64_C(1) << 30) : (1 - (INT64_C(1) << 30));
    return (int32_t)((ab + nudge) / (INT64_C(1) << 31)); /* C division truncates toward zero, as gemmlowp */
}

/* x / 2^exponent rounded to nearest, halves away from zero; 0 <= exponent <= 31. */
static inline int32_t mcu_divide_by_pot(int32_t x, int32_t exponent)
{
    const int32_t mask = (int32_t)((INT64_C(1) << exponent) - 1);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/* TFLite MultiplyByQuantizedMultiplier. The left shift is done in 64 bits and saturated, where TFLite
 * would overflow; the compiler keeps shifts in range, so results agree wherever TFLite's are defined. */
static inline int32_t mcu_requantize(int32_t x, int32_t multiplier, int32_t shift)
{
    const int32_t left = shift > 0 ? shift : 0;
    const int32_t right = shift > 0 ? 0 : -shift;
    int64_t shifted = (int64_t)x * ((int64_t)1 << left);
    if (shifted > INT32_MAX)
    {
        shifted = INT32_MAX;
    }
    if (shifted < INT32_MIN)
    {
        shifted = INT32_MIN;
    }
    return mcu_divide_by_pot(mcu_doubling_high_mul((int32_t)shifted, multiplier), right);
}

#endif /* MCU_NN_SUPPORT_H */
