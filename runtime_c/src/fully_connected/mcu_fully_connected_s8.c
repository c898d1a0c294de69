/* Per-channel int8 fully connected layer. Refer to mcu_nn.h for details. */
#include "mcu_nn.h"

MCU_API mcu_status mcu_fully_connected_s8(const mcu_context *ctx,
                                          const mcu_fc_params *params,
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
    const int32_t depth = input_dims->c;
    const int32_t out_c = output_dims->c;
    if (filter_dims->c != depth || filter_dims->n != out_c)
    {
        return MCU_STATUS_ARG_ERROR;
    }
    for (int32_t b = 0; b < input_dims->n; b++)
    {
        const int8_t *x = input + (int64_t)b * depth;
        for (int32_t oc = 0; oc < out_c; oc++)
        {
            const int8_t *w = filter + (int64_t)oc * depth;
            int32_t acc = bias ? bias[oc] : 0;
            for (int32_t k = 0; k < depth; k++)
            {
                acc += (int32_t)w[k] * ((int32_t)x[k] + params->input_offset);
            }
            acc = mcu_requantize(acc, quant->multiplier[oc], quant->shift[oc]) + params->output_offset;
            output[(int64_t)b * out_c + oc] = (int8_t)mcu_clamp(acc, params->activation.min, params->activation.max);
        }
    }
    return MCU_STATUS_OK;
}
