/* int8 nearest-neighbour resize of H and W with compile-time source tables. Refer to mcu_nn.h. */
#include "mcu_nn.h"

MCU_API mcu_status mcu_resize_nearest_s8(const mcu_context *ctx,
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
    for (int32_t y = 0; y < params->out_size.h; y++)
    {
        if (y_table[y] < 0 || y_table[y] >= in_h)
        {
            return MCU_STATUS_ARG_ERROR;
        }
    }
    for (int32_t x = 0; x < params->out_size.w; x++)
    {
        if (x_table[x] < 0 || x_table[x] >= in_w)
        {
            return MCU_STATUS_ARG_ERROR;
        }
    }
    int8_t *dst = output;
    for (int32_t b = 0; b < params->batches; b++)
    {
        const int8_t *image = input + (int64_t)b * in_h * in_w * ch;
        for (int32_t y = 0; y < params->out_size.h; y++)
        {
            const int8_t *row = image + (int64_t)y_table[y] * in_w * ch;
            for (int32_t x = 0; x < params->out_size.w; x++)
            {
                /* NHWC: one output pixel is a run of `ch` bytes of one input pixel. */
                const int8_t *src = row + (int64_t)x_table[x] * ch;
                for (int32_t c = 0; c < ch; c++)
                {
                    *dst++ = src[c];
                }
            }
        }
    }
    return MCU_STATUS_OK;
}
