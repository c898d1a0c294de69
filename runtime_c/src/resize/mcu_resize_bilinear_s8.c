/* int8 bilinear resize of H and W with compile-time taps and Q11 weights. Refer to mcu_nn.h. */
#include "mcu_nn.h"

/* Table entries are (i0, i1, weight of i1 in Q11); checks they address the input and the weight is in [0, 1]. */
static int mcu_resize_taps_valid(const int16_t *table, int32_t count, int32_t size)
{
    for (int32_t k = 0; k < count; k++)
    {
        const int16_t *t = &table[3 * k];
        if (t[0] < 0 || t[0] >= size || t[1] < 0 || t[1] >= size || t[2] < 0 || t[2] > 2048)
        {
            return 0;
        }
    }
    return 1;
}

MCU_API mcu_status mcu_resize_bilinear_s8(const mcu_context *ctx,
                                          const mcu_resize_params *params,
                                          const int16_t *y_table,
                                          const int16_t *x_table,
                                          const int8_t *input,
                                          int8_t *output)
{
    (void)ctx;
    const int32_t ch = params->channels;
    const int32_t in_h = params->in_size.h;
    const int32_t in_w = params->in_size.w;
    if (!mcu_resize_taps_valid(y_table, params->out_size.h, in_h) ||
        !mcu_resize_taps_valid(x_table, params->out_size.w, in_w))
    {
        return MCU_STATUS_ARG_ERROR;
    }
    int8_t *dst = output;
    for (int32_t b = 0; b < params->batches; b++)
    {
        const int8_t *image = input + (int64_t)b * in_h * in_w * ch;
        for (int32_t y = 0; y < params->out_size.h; y++)
        {
            const int16_t *ty = &y_table[3 * y];
            const int8_t *top = image + (int64_t)ty[0] * in_w * ch;
            const int8_t *bottom = image + (int64_t)ty[1] * in_w * ch;
            const int32_t wy1 = ty[2];
            const int32_t wy0 = 2048 - wy1;
            for (int32_t x = 0; x < params->out_size.w; x++)
            {
                const int16_t *tx = &x_table[3 * x];
                const int32_t wx1 = tx[2];
                const int32_t wx0 = 2048 - wx1;
                const int32_t w00 = wy0 * wx0, w01 = wy0 * wx1, w10 = wy1 * wx0, w11 = wy1 * wx1;
                const int8_t *p00 = top + (int64_t)tx[0] * ch;
                const int8_t *p01 = top + (int64_t)tx[1] * ch;
                const int8_t *p10 = bottom + (int64_t)tx[0] * ch;
                const int8_t *p11 = bottom + (int64_t)tx[1] * ch;
                for (int32_t c = 0; c < ch; c++)
                {
                    /* The weights sum to 2^22 and |x| <= 128: |acc| <= 2^29 fits int32. */
                    const int32_t acc = w00 * p00[c] + w01 * p01[c] + w10 * p10[c] + w11 * p11[c];
                    /* Divide by 2^22 rounding halves away from zero (C division truncates toward zero). */
                    const int32_t v = acc >= 0 ? (acc + (1 << 21)) / (1 << 22) : (acc - (1 << 21)) / (1 << 22);
                    *dst++ = (int8_t)mcu_clamp(v, -128, 127);
                }
            }
        }
    }
    return MCU_STATUS_OK;
}
