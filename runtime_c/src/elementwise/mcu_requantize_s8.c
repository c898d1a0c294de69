/* int8 requantization to a new scale and zero point. Refer to mcu_nn.h for details. */
#include "mcu_nn.h"

MCU_API mcu_status mcu_requantize_s8(const mcu_context *ctx,
                                     const mcu_requantize_params *params,
                                     const int8_t *input,
                                     int32_t size,
                                     int8_t *output)
{
    (void)ctx;
    for (int32_t i = 0; i < size; i++)
    {
        const int32_t v = mcu_requantize(input[i] + params->input_offset, params->multiplier, params->shift);
        /* Bound first: a saturated value plus the offset would overflow, and the clamp gives the same result. */
        output[i] = (int8_t)mcu_clamp(mcu_clamp(v, -256, 256) + params->output_offset, -128, 127);
    }
    return MCU_STATUS_OK;
}
