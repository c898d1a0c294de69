/* int8 average pooling with TFLite's rounding. Refer to mcu_nn.h for details. */
#include "mcu_nn.h"

MCU_API mcu_status mcu_avg_pool_s8(const mcu_context *ctx,
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
    /* With count_include_pad, taps inside the explicit pads count (as pad_value); beyond them they never do. */
    const int32_t lo_y = params->count_include_pad ? -params->padding.h : 0;
    const int32_t lo_x = params->count_include_pad ? -params->padding.w : 0;
    const int32_t hi_y = input_dims->h + (params->count_include_pad ? params->pad_end.h : 0);
    const int32_t hi_x = input_dims->w + (params->count_include_pad ? params->pad_end.w : 0);
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
                    int32_t sum = 0;
                    int32_t count = 0;
                    for (int32_t ky = 0; ky < params->kernel.h; ky++)
                    {
                        const int32_t iy = oy * params->stride.h - params->padding.h + ky;
                        for (int32_t kx = 0; kx < params->kernel.w; kx++)
                        {
                            const int32_t ix = ox * params->stride.w - params->padding.w + kx;
                            if (iy < lo_y || iy >= hi_y || ix < lo_x || ix >= hi_x)
                            {
                                continue;
                            }
                            const int inside = iy >= 0 && iy < input_dims->h && ix >= 0 && ix < input_dims->w;
                            sum += inside ? in_batch[((int64_t)iy * input_dims->w + ix) * ch + c] : params->pad_value;
                            count++;
                        }
                    }
                    if (count == 0)
                    {
                        return MCU_STATUS_ARG_ERROR; /* a window entirely outside the image */
                    }
                    /* Round halves away from zero with truncating division, as TFLite's reference pooling. */
                    const int32_t avg = sum > 0 ? (sum + count / 2) / count : (sum - count / 2) / count;
                    out[c] = (int8_t)mcu_clamp(avg, params->activation.min, params->activation.max);
                }
            }
        }
    }
    return MCU_STATUS_OK;
}
