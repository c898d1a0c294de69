/* Per-channel int8 fully connected layer. Refer to mcu_nn.h for details. */
#include "mcu_nn.h"

static inline int8_t mcu_fully_connected_s8_out(int32_t acc, int32_t multiplier, int32_t shift, int32_t out_offset,
                                                int32_t act_min, int32_t act_max)
{
    return (int8_t)mcu_clamp(mcu_requantize(acc, multiplier, shift) + out_offset, act_min, act_max);
}

/* Two output features over one row with the input offset already in the bias: the row is read once for both. */
static inline void mcu_fully_connected_s8_pair(const int8_t *x, const int8_t *w0, const int8_t *w1, int32_t depth,
                                               int32_t *acc0, int32_t *acc1)
{
    int32_t a0 = *acc0, a1 = *acc1;
    int32_t k = 0;
#if MCU_DSP
    for (; k + 4 <= depth; k += 4)
    {
        const uint32_t xw = mcu_read_u32(x + k);
        const int32_t x_even = mcu_sxtb16(xw), x_odd = mcu_sxtb16_ror8(xw);
        const uint32_t wa = mcu_read_u32(w0 + k);
        const uint32_t wb = mcu_read_u32(w1 + k);
        a0 = mcu_smlad(mcu_sxtb16(wa), x_even, a0);
        a0 = mcu_smlad(mcu_sxtb16_ror8(wa), x_odd, a0);
        a1 = mcu_smlad(mcu_sxtb16(wb), x_even, a1);
        a1 = mcu_smlad(mcu_sxtb16_ror8(wb), x_odd, a1);
    }
#endif
    for (; k < depth; k++)
    {
        const int32_t xk = x[k];
        a0 += xk * w0[k];
        a1 += xk * w1[k];
    }
    *acc0 = a0;
    *acc1 = a1;
}

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
    /* Locals: int8 stores may alias the params, so the compiler would reload them after every output. */
    const int32_t in_offset = params->input_offset, out_offset = params->output_offset;
    const int32_t act_min = params->activation.min, act_max = params->activation.max;
    const int32_t *multiplier = quant->multiplier, *shift = quant->shift;
    for (int32_t b = 0; b < input_dims->n; b++)
    {
        const int8_t *x = input + (int64_t)b * depth;
        int8_t *out = output + (int64_t)b * out_c;
        int32_t oc = 0;
        if (in_offset == 0 && bias != NULL) /* the compiler folds the offset into the bias where it fits */
        {
            for (; oc + 2 <= out_c; oc += 2)
            {
                int32_t acc0 = bias[oc], acc1 = bias[oc + 1];
                const int8_t *w0 = filter + (int64_t)oc * depth;
                mcu_fully_connected_s8_pair(x, w0, w0 + depth, depth, &acc0, &acc1);
                out[oc] = mcu_fully_connected_s8_out(acc0, multiplier[oc], shift[oc], out_offset, act_min, act_max);
                out[oc + 1] =
                    mcu_fully_connected_s8_out(acc1, multiplier[oc + 1], shift[oc + 1], out_offset, act_min, act_max);
            }
        }
        for (; oc < out_c; oc++)
        {
            const int8_t *w = filter + (int64_t)oc * depth;
            int32_t acc = bias ? bias[oc] : 0;
            for (int32_t k = 0; k < depth; k++)
            {
                acc += (int32_t)w[k] * ((int32_t)x[k] + in_offset);
            }
            out[oc] = mcu_fully_connected_s8_out(acc, multiplier[oc], shift[oc], out_offset, act_min, act_max);
        }
    }
    return MCU_STATUS_OK;
}
