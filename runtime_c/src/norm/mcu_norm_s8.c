/* int8 group normalisation in integers. Refer to mcu_nn.h for details. */
#include "mcu_nn.h"

#define MCU_NORM_FRACTION_BITS 12 /* of t, the normalised value */

/* floor(sqrt(v)) of a 64-bit value, bit by bit. */
static uint32_t mcu_isqrt64(uint64_t v)
{
    uint64_t root = 0;
    uint64_t bit = (uint64_t)1 << 62;
    while (bit > v)
    {
        bit >>= 2;
    }
    while (bit != 0)
    {
        if (v >= root + bit)
        {
            v -= root + bit;
            root = (root >> 1) + bit;
        }
        else
        {
            root >>= 1;
        }
        bit >>= 2;
    }
    return (uint32_t)root;
}

/* round(x / 2^shift), halves upward, for shift in 1..62 (no right shift of a negative value). */
static int64_t mcu_round_shift64(int64_t x, int32_t shift)
{
    const int64_t half = (int64_t)1 << (shift - 1);
    return x >= 0 ? (x + half) >> shift : -((-x + half - 1) >> shift);
}

MCU_API mcu_status mcu_norm_s8(const mcu_context *ctx,
                               const mcu_norm_params *params,
                               const int32_t *gain,
                               const int64_t *bias,
                               const int8_t *input,
                               int8_t *output)
{
    (void)ctx;
    const int32_t positions = params->positions;
    const int32_t groups = params->groups;
    const int32_t k_count = params->group_channels;
    const int32_t channels = groups * k_count;
    if (params->batches < 1 || positions < 1 || groups < 1 || k_count < 1 ||
        (int64_t)positions * k_count >= ((int64_t)1 << 23) || params->eps_term < 1 || params->out_shift < 1 ||
        params->out_shift > 62)
    {
        return MCU_STATUS_ARG_ERROR;
    }
    const int32_t count = positions * k_count;
    for (int32_t n = 0; n < params->batches; n++)
    {
        const int8_t *in_batch = input + (int64_t)n * positions * channels;
        int8_t *out_batch = output + (int64_t)n * positions * channels;
        for (int32_t g = 0; g < groups; g++)
        {
            int32_t sum = 0; /* |x| <= 128 over < 2^23 values */
            int64_t squares = 0;
            for (int32_t p = 0; p < positions; p++)
            {
                const int8_t *x = in_batch + (int64_t)p * channels + g * k_count;
                for (int32_t k = 0; k < k_count; k++)
                {
                    sum += x[k];
                    squares += (int32_t)x[k] * x[k];
                }
            }
            /* V = count^2 (variance + eps) in input units^2, in [1, 2^62): scaled by 4^u into [2^60, 2^62) so that
               its square root has 31 bits; 1 / sqrt(V) = m * 2^(u - 61) with m = (2^61 - 1) / sqrt(4^u V). */
            uint64_t v = (uint64_t)((int64_t)count * squares - (int64_t)sum * sum + params->eps_term);
            int32_t u = 0;
            while (v < ((uint64_t)1 << 60))
            {
                v <<= 2;
                u++;
            }
            const int64_t m = (int64_t)((((uint64_t)1 << 61) - 1) / mcu_isqrt64(v));
            const int32_t t_shift = 61 - MCU_NORM_FRACTION_BITS - u; /* >= 19 */
            for (int32_t p = 0; p < positions; p++)
            {
                const int32_t at = p * channels + g * k_count;
                for (int32_t k = 0; k < k_count; k++)
                {
                    const int32_t c = g * k_count + k;
                    const int64_t d = (int64_t)count * in_batch[at + k] - sum; /* |d| < 2^31 */
                    const int64_t t = mcu_round_shift64(d * m, t_shift);    /* Q12, |t| <= 2^12 sqrt(count) */
                    const int64_t y = mcu_round_shift64(t * gain[c] + bias[c], params->out_shift);
                    const int64_t clamped = y < -256 ? -256 : (y > 256 ? 256 : y); /* then int32 is safe */
                    out_batch[at + k] = (int8_t)mcu_clamp((int32_t)clamped + params->output_offset,
                                                          params->activation.min, params->activation.max);
                }
            }
        }
    }
    return MCU_STATUS_OK;
}
