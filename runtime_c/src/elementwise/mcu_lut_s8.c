/* int8 lookup table: any pointwise function of one int8 tensor. Refer to mcu_nn.h for details. */
#include "mcu_nn.h"

MCU_API mcu_status mcu_lut_s8(const mcu_context *ctx, const int8_t *table, const int8_t *input, int32_t size,
                              int8_t *output)
{
    (void)ctx;
    for (int32_t i = 0; i < size; i++)
    {
        output[i] = table[input[i] + 128];
    }
    return MCU_STATUS_OK;
}
