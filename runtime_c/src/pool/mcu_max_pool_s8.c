/* int8 max pooling. Refer to mcu_nn.h for details. */
#include "mcu_nn.h"

MCU_API mcu_status mcu_max_pool_s8(const mcu_context *ctx,
                                   const mcu_pool_params *params,
                                   const mcu_dims *input_dims,
                                   const int8_t *input,
                                   const mcu_dims *output_dims,
                                   int8_t *output)
{
    (void)ctx;
    const int32_t ch = input_dims->c;
    const int32_t pixel = mcu_pixel_stride(params->output_stride, ch);
    if (output_dims->c != ch || pixel == 0)
    {
        return MCU_STATUS_ARG_ERROR;
    }
    for (int32_t b = 0; b < input_dims->n; b++)
    {
        const int8_t *in_batch = input + (int64_t)b * input_dims->h * input_dims->w * ch;
        for (int32_t oy = 0; oy < output_dims->h; oy++)
        {
            for (int32_t ox = 0; ox < output_dims->w; ox++)
            {
                int8_t *out = output + (((int64_t)b * output_dims->h + oy) * output_dims->w + ox) * pixel;
                for (int32_t c = 0; c < ch; c++)
                {
                    int32_t best = -129; /* below every int8: a window with no in-image tap clamps to min */
                    for (int32_t ky = 0; ky < params->kernel.h; ky++)
                    {
                        const int32_t iy = oy * params->stride.h - params->padding.h + ky * params->dilation.h;
                        if (iy < 0 || iy >= input_dims->h)
                        {
                            continue;
                        }
                        for (int32_t kx = 0; kx < params->kernel.w; kx++)
                        {
                            const int32_t ix = ox * params->stride.w - params->padding.w + kx * params->dilation.w;
                            if (ix < 0 || ix >= input_dims->w)
                            {
                                continue;
                            }
                            const int32_t v = in_batch[((int64_t)iy * input_dims->w + ix) * ch + c];
                            best = v > best ? v : best;
                        }
                    }
                    out[c] = (int8_t)mcu_clamp(best, params->activation.min, params->activation.max);
                }
            }
        }
    }
    return MCU_STATUS_OK;
}
