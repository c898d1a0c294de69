/* int8 PRelu with a broadcast int8 slope (TFLite Micro's PRELU). Refer to mcu_nn.h for details. */
#include "mcu_nn.h"

/* One output row (an mcu_broadcast_row_fn): input 1 is x, input 2 the slope. */
static void mcu_prelu_row(const void *params_,
                          const int8_t *input,
                          int32_t input_step,
                          const int8_t *alpha,
                          int32_t alpha_step,
                          int32_t count,
                          int8_t *output)
{
    const mcu_prelu_params *params = (mcu_prelu_params const *)params_;
    for (int32_t i = 0; i < count; i++)
    {
        const int32_t x = input[i * input_step] + params->input_offset;
        int32_t v;
        if (x >= 0)
        {
            v = mcu_requantize(x, params->identity_multiplier, params->identity_shift);
        }
        else
        {
            /* |x| <= 255 and |alpha + offset| <= 255: the product fits in 17 bits. */
            const int32_t a = alpha[i * alpha_step] + params->alpha_offset;
            v = mcu_requantize(x * a, params->alpha_multiplier, params->alpha_shift);
        }
        /* Bound first: a saturated value plus the offset would overflow, and the clamp gives the same result. */
        output[i] = (int8_t)mcu_clamp(mcu_clamp(v, -256, 256) + params->output_offset, -128, 127);
    }
}

MCU_API mcu_status mcu_prelu_s8(const mcu_context *ctx,
                                const mcu_prelu_params *params,
                                const mcu_broadcast_shape *shape,
                                const int8_t *input,
                                const int8_t *alpha,
                                int8_t *output)
{
    (void)ctx;
    if (params == NULL || shape == NULL || input == NULL || alpha == NULL || output == NULL)
    {
        return MCU_STATUS_ARG_ERROR;
    }
    mcu_broadcast_rows(shape, params, input, alpha, output, mcu_prelu_row);
    return MCU_STATUS_OK;
}
