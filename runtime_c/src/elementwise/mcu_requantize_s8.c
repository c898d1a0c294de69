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
        output[i] = mcu_requantize_s8_value(params, input[i]);
    }
    return MCU_STATUS_OK;
}
