/* Per-channel int8 depthwise convolution, reference loops. Refer to mcu_nn.h for details. */
#include "mcu_nn.h"

MCU_API mcu_status mcu_depthwise_conv_s8(const mcu_context *ctx,
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
    const int32_t pixel = mcu_pixel_stride(params->output_stride, out_c);
    if (filter_dims->c != out_c || in_c <= 0 || out_c % in_c != 0 || pixel == 0)
    {
        return MCU_STATUS_ARG_ERROR;
    }
    const int32_t multiplier = out_c / in_c;
    for (int32_t b = 0; b < input_dims->n; b++)
    {
        const int8_t *in_batch = input + (int64_t)b * input_dims->h * input_dims->w * in_c;
        for (int32_t oy = 0; oy < output_dims->h; oy++)
        {
            for (int32_t ox = 0; ox < output_dims->w; ox++)
            {
                int8_t *out = output + (((int64_t)b * output_dims->h + oy) * output_dims->w + ox) * pixel;
                for (int32_t oc = 0; oc < out_c; oc++)
                {
                    const int32_t ic = oc / multiplier;
                    int32_t acc = bias ? bias[oc] : 0;
                    for (int32_t ky = 0; ky < filter_dims->h; ky++)
                    {
                        const int32_t iy = oy * params->stride.h - params->padding.h + ky * params->dilation.h;
                        if (iy < 0 || iy >= input_dims->h)
                        {
                            continue; /* zero padding: the tap adds real 0 */
                        }
                        for (int32_t kx = 0; kx < filter_dims->w; kx++)
                        {
                            const int32_t ix = ox * params->stride.w - params->padding.w + kx * params->dilation.w;
                            if (ix < 0 || ix >= input_dims->w)
                            {
                                continue;
                            }
                            const int32_t x = in_batch[((int64_t)iy * input_dims->w + ix) * in_c + ic];
                            const int32_t w = filter[((int64_t)ky * filter_dims->w + kx) * out_c + oc];
                            acc += w * (x + params->input_offset);
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
