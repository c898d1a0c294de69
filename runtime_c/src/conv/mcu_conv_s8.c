/* Per-channel int8 convolution, grouped or not: per output pixel and group, im2col of the group's input channels
 * into int16, then one dot product per output channel of the group. Refer to mcu_nn.h for details. */
#include "mcu_nn.h"

MCU_API int32_t mcu_conv_s8_get_buffer_size(const mcu_dims *filter_dims)
{
    return 2 * filter_dims->h * filter_dims->w * filter_dims->c;
}

MCU_API mcu_status mcu_conv_s8(const mcu_context *ctx,
                               const mcu_conv_params *params,
                               const mcu_per_channel_quant *quant,
                               const mcu_dims *input_dims,
                               const int8_t *input,
                               const mcu_dims *filter_dims,
                               const int8_t *filter,
                               const int32_t *bias,
                               const mcu_dims *output_dims,
                               int8_t *output)
{
    const int32_t in_c = input_dims->c;
    const int32_t group_c = filter_dims->c; /* input channels per group */
    const int32_t groups = group_c > 0 ? in_c / group_c : 0;
    const int32_t patch = filter_dims->h * filter_dims->w * group_c;
    const int32_t pixel = mcu_pixel_stride(params->output_stride, output_dims->c);
    if (groups == 0 || groups * group_c != in_c || filter_dims->n != output_dims->c || output_dims->c % groups != 0 ||
        pixel == 0 || ctx == NULL || ctx->buf == NULL || ctx->size < mcu_conv_s8_get_buffer_size(filter_dims))
    {
        return MCU_STATUS_ARG_ERROR;
    }
    const int32_t group_out = output_dims->c / groups; /* output channels per group */
    int16_t *col = (int16_t *)ctx->buf;
    for (int32_t b = 0; b < input_dims->n; b++)
    {
        const int8_t *in_batch = input + (int64_t)b * input_dims->h * input_dims->w * in_c;
        for (int32_t oy = 0; oy < output_dims->h; oy++)
        {
            for (int32_t ox = 0; ox < output_dims->w; ox++)
            {
                int8_t *out = output + (((int64_t)b * output_dims->h + oy) * output_dims->w + ox) * pixel;
                for (int32_t g = 0; g < groups; g++)
                {
                    /* Taps outside the image hold real 0: with the input offset added they are exactly 0 here. */
                    int32_t k = 0;
                    for (int32_t ky = 0; ky < filter_dims->h; ky++)
                    {
                        const int32_t iy = oy * params->stride.h - params->padding.h + ky * params->dilation.h;
                        for (int32_t kx = 0; kx < filter_dims->w; kx++)
                        {
                            const int32_t ix = ox * params->stride.w - params->padding.w + kx * params->dilation.w;
                            if (iy < 0 || iy >= input_dims->h || ix < 0 || ix >= input_dims->w)
                            {
                                for (int32_t ic = 0; ic < group_c; ic++)
                                {
                                    col[k++] = 0;
                                }
                                continue;
                            }
                            const int8_t *src = in_batch + ((int64_t)iy * input_dims->w + ix) * in_c + g * group_c;
                            for (int32_t ic = 0; ic < group_c; ic++)
                            {
                                col[k++] = (int16_t)(src[ic] + params->input_offset);
                            }
                        }
                    }
                    for (int32_t oc = g * group_out; oc < (g + 1) * group_out; oc++)
                    {
                        const int8_t *w = filter + (int64_t)oc * patch;
                        /* |w * col| <= 127 * 255: 66,000 taps fit the int32 accumulator (the compiler checks). */
                        int32_t acc = bias ? bias[oc] : 0;
                        for (int32_t i = 0; i < patch; i++)
                        {
                            acc += (int32_t)w[i] * col[i];
                        }
                        acc = mcu_requantize(acc, quant->multiplier[oc], quant->shift[oc]) + params->output_offset;
                        out[oc] = (int8_t)mcu_clamp(acc, params->activation.min, params->activation.max);
                    }
                }
            }
        }
    }
    return MCU_STATUS_OK;
}
