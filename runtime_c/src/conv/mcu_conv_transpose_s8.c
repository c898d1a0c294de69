/* Per-channel int8 transposed convolution in gather form: each output pixel sums the input pixels and taps
 * that reach it, so no int32 buffer of the output's size is needed. Refer to mcu_nn.h for details. */
#include "mcu_nn.h"

MCU_API mcu_status mcu_conv_transpose_s8(const mcu_context *ctx,
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
    (void)ctx;
    const int32_t in_c = input_dims->c;
    const int32_t out_c = output_dims->c;
    const int32_t sh = params->stride.h;
    const int32_t sw = params->stride.w;
    const int32_t group_c = filter_dims->c; /* input channels per group */
    const int32_t groups = group_c > 0 ? in_c / group_c : 0;
    const int32_t patch = filter_dims->h * filter_dims->w * group_c;
    const int32_t pixel = mcu_pixel_stride(params->output_stride, out_c);
    if (groups == 0 || groups * group_c != in_c || out_c % groups != 0 || filter_dims->n != out_c ||
        input_dims->n != output_dims->n || sh < 1 || sw < 1 || pixel == 0)
    {
        return MCU_STATUS_ARG_ERROR;
    }
    const int32_t group_out = out_c / groups; /* output channels per group */
    for (int32_t b = 0; b < output_dims->n; b++)
    {
        const int8_t *in_batch = input + (int64_t)b * input_dims->h * input_dims->w * in_c;
        for (int32_t oy = 0; oy < output_dims->h; oy++)
        {
            for (int32_t ox = 0; ox < output_dims->w; ox++)
            {
                int8_t *out = output + (((int64_t)b * output_dims->h + oy) * output_dims->w + ox) * pixel;
                for (int32_t oc = 0; oc < out_c; oc++)
                {
                    const int8_t *w_oc = filter + (int64_t)oc * patch;
                    const int32_t first_ic = oc / group_out * group_c;
                    int32_t acc = bias ? bias[oc] : 0;
                    for (int32_t ky = 0; ky < filter_dims->h; ky++)
                    {
                        /* Input row iy reaches this row through tap ky iff iy * stride == oy + pad - ky * dilation. */
                        const int32_t ty = oy + params->padding.h - ky * params->dilation.h;
                        if (ty < 0 || ty % sh != 0 || ty / sh >= input_dims->h)
                        {
                            continue;
                        }
                        for (int32_t kx = 0; kx < filter_dims->w; kx++)
                        {
                            const int32_t tx = ox + params->padding.w - kx * params->dilation.w;
                            if (tx < 0 || tx % sw != 0 || tx / sw >= input_dims->w)
                            {
                                continue;
                            }
                            const int8_t *src =
                                in_batch + ((int64_t)(ty / sh) * input_dims->w + tx / sw) * in_c + first_ic;
                            const int8_t *w = w_oc + ((int64_t)ky * filter_dims->w + kx) * group_c;
                            /* |w * (x + offset)| <= 127 * 255: 66,000 taps fit int32 (the compiler checks). */
                            for (int32_t ic = 0; ic < group_c; ic++)
                            {
                                acc += (int32_t)w[ic] * ((int32_t)src[ic] + params->input_offset);
                            }
                        }
                    }
                    acc = mcu_requantize(acc, quant->multiplier[oc], quant->shift[oc]) + params->output_offset;
                    out[oc] = (int8_t)mcu_clamp(acc, params->activation.min, params->activation.max);
                }
            }
        }
    }
    return MCU_STATUS_OK;
}
