/* int8 add and subtract with broadcasting and TFLite's input rescaling. Refer to mcu_nn.h for details. */
#include "mcu_nn.h"

/* One output row (an mcu_broadcast_row_fn). */
static void mcu_add_row(const void *params_,
                        const int8_t *input1,
                        int32_t step1,
                        const int8_t *input2,
                        int32_t step2,
                        int32_t count,
                        int8_t *output)
{
    const mcu_add_params *params = (mcu_add_params const *)params_;
    const int32_t sign = params->subtract ? -1 : 1;
    for (int32_t i = 0; i < count; i++)
    {
        const int32_t a = mcu_rescale_input(input1[i * step1], params->input1_offset, params->left_shift,
                                            params->input1_multiplier, params->input1_shift);
        const int32_t b = mcu_rescale_input(input2[i * step2], params->input2_offset, params->left_shift,
                                            params->input2_multiplier, params->input2_shift);
        /* SUB subtracts the rescaled input 2 (TFLite Micro's SubElementwise), not a negated multiplier:
         * the two differ on exact rounding ties. */
        const int32_t sum = a + sign * b;
        const int32_t out =
            mcu_requantize(sum, params->output_multiplier, params->output_shift) + params->output_offset;
        output[i] = (int8_t)mcu_clamp(out, params->activation.min, params->activation.max);
    }
}

MCU_API mcu_status mcu_add_s8(const mcu_context *ctx,
                              const mcu_add_params *params,
                              const mcu_broadcast_shape *shape,
                              const int8_t *input1,
                              const int8_t *input2,
                              int8_t *output)
{
    (void)ctx;
    if (params == NULL || shape == NULL || input1 == NULL || input2 == NULL || output == NULL)
    {
        return MCU_STATUS_ARG_ERROR;
    }
    mcu_broadcast_rows(shape, params, input1, input2, output, mcu_add_row);
    return MCU_STATUS_OK;
}
