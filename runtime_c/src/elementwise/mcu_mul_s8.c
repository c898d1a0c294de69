/* int8 multiply with broadcasting (TFLite Micro's MUL). Refer to mcu_nn.h for details. */
#include "mcu_nn.h"

/* One output row (an mcu_broadcast_row_fn). */
static void mcu_mul_row(const void *params_,
                        const int8_t *input1,
                        int32_t step1,
                        const int8_t *input2,
                        int32_t step2,
                        int32_t count,
                        int8_t *output)
{
    const mcu_mul_params *params = (mcu_mul_params const *)params_;
    for (int32_t i = 0; i < count; i++)
    {
        /* |x + offset| <= 255, so the product fits in 17 bits. */
        const int32_t x1 = input1[i * step1] + params->input1_offset;
        const int32_t x2 = input2[i * step2] + params->input2_offset;
        const int32_t product = x1 * x2;
        const int32_t out =
            mcu_requantize(product, params->output_multiplier, params->output_shift) + params->output_offset;
        output[i] = (int8_t)mcu_clamp(out, params->activation.min, params->activation.max);
    }
}

MCU_API mcu_status mcu_mul_s8(const mcu_context *ctx,
                              const mcu_mul_params *params,
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
    mcu_broadcast_rows(shape, params, input1, input2, output, mcu_mul_row);
    return MCU_STATUS_OK;
}
