/* int8 maximum, minimum and comparisons of two tensors with broadcasting. Refer to mcu_nn.h for details. */
#include "mcu_nn.h"

/* One output row (an mcu_broadcast_row_fn). */
static void mcu_compare_row(const void *params_,
                            const int8_t *input1,
                            int32_t step1,
                            const int8_t *input2,
                            int32_t step2,
                            int32_t count,
                            int8_t *output)
{
    const mcu_compare_params *params = (mcu_compare_params const *)params_;
    const mcu_add_params *r = &params->rescale;
    for (int32_t i = 0; i < count; i++)
    {
        const int32_t a =
            mcu_rescale_input(input1[i * step1], r->input1_offset, r->left_shift, r->input1_multiplier, r->input1_shift);
        const int32_t b =
            mcu_rescale_input(input2[i * step2], r->input2_offset, r->left_shift, r->input2_multiplier, r->input2_shift);
        int32_t out;
        switch (params->op)
        {
        case MCU_PICK_MAX:
        case MCU_PICK_MIN:
        {
            const int32_t chosen = (params->op == MCU_PICK_MAX) == (a > b) ? a : b;
            out = mcu_requantize(chosen, r->output_multiplier, r->output_shift) + r->output_offset;
            out = mcu_clamp(out, r->activation.min, r->activation.max);
            break;
        }
        case MCU_IS_GREATER:
            out = a > b;
            break;
        case MCU_IS_GREATER_EQUAL:
            out = a >= b;
            break;
        default:
            out = a == b;
            break;
        }
        output[i] = (int8_t)out;
    }
}

MCU_API mcu_status mcu_compare_s8(const mcu_context *ctx,
                                  const mcu_compare_params *params,
                                  const mcu_broadcast_shape *shape,
                                  const int8_t *input1,
                                  const int8_t *input2,
                                  int8_t *output)
{
    (void)ctx;
    if (params == NULL || shape == NULL || input1 == NULL || input2 == NULL || output == NULL ||
        params->op < MCU_PICK_MAX || params->op > MCU_IS_EQUAL)
    {
        return MCU_STATUS_ARG_ERROR;
    }
    mcu_broadcast_rows(shape, params, input1, input2, output, mcu_compare_row);
    return MCU_STATUS_OK;
}
