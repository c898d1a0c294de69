/* int8 clamp (standalone ReLU / Clip), in place or not. Refer to mcu_nn.h for details. */
#include "mcu_nn.h"

MCU_API mcu_status mcu_clamp_s8(const mcu_context *ctx,
                                const mcu_activation *activation,
                                const int8_t *input,
                                int32_t size,
                                int8_t *output)
{
    (void)ctx;
    for (int32_t i = 0; i < size; i++)
    {
        output[i] = (int8_t)mcu_clamp(input[i], activation->min, activation->max);
    }
    return MCU_STATUS_OK;
}
